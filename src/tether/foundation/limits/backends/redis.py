"""The limits store in Redis: one set of counters, buckets and breakers for every worker.

Each intent is one Lua script (redis_scripts.py), so two workers taking from one bucket, or
counting one run's calls, never interleave. Keys start with `prefix` (default `tether:`), so
deployments and tests can share a server. redis-py is imported here only; its errors become
`LimitsUnavailable` at this boundary, so while Redis is down every guarded call is refused
(budgets fail closed); redis-py reconnects on the next command, so a Redis that comes back is
used again without a restart. A run's keys expire `run_ttl_seconds` (default 30 days) after
the run last used them, so the counters of finished runs do not pile up.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from tether.errors import LimitsUnavailable
from tether.foundation.limits.backends import redis_scripts as lua
from tether.foundation.limits.contract import Admission, BreakerState, RunBudget
from tether.settings import redact_dsn

if TYPE_CHECKING:
    from tether.settings import Settings

T = TypeVar("T")


class RedisLimitsStore:
    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "tether:",
        run_ttl_seconds: float = 30 * 24 * 3600.0,
    ) -> None:
        import redis

        self._errors: tuple[type[Exception], ...] = (redis.RedisError,)
        self._url, self._p = url, prefix
        self._ttl = max(1, int(run_ttl_seconds * 1000))  # milliseconds, for PEXPIRE
        self._client = redis.Redis.from_url(url, decode_responses=True)
        self._scripts = {
            name: self._client.register_script(getattr(lua, name))
            for name in ("ADMIT", "ADD_COST", "TAKE", "BREAKER_ALLOW", "BREAKER_RECORD")
        }

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> RedisLimitsStore:
        """Options from `[limits.options]`: `url` (default: the limits database URL when it is
        a redis:// one, else local Redis), `prefix` and `run_ttl_seconds`."""
        url = settings.database_url_for("limits")
        if "url" not in options and url.startswith("redis://"):
            options["url"] = url
        return cls(**options)

    def _do(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except self._errors as e:
            raise LimitsUnavailable(
                f"the limits store (Redis at {redact_dsn(self._url)}) is unreachable ({e}); "
                "calls are refused until it answers, as a budget that cannot be checked is "
                "not spent"
            ) from e

    def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        return self._do(lambda: self._scripts[name](keys=keys, args=args))

    def admit(
        self,
        run_id: str,
        step_id: str,
        fingerprint: str,
        *,
        counted: bool,
        call_cap: int,
        loop_after: int,
        cost_cap: float | None = None,
    ) -> Admission:
        keys = [f"{self._p}run:{run_id}", f"{self._p}steps:{run_id}"]
        cap = "" if cost_cap is None else repr(float(cost_cap))
        args = [step_id, fingerprint, int(counted), call_cap, loop_after, cap, self._ttl]
        answer, replayed, spent, raised = self._run("ADMIT", keys, args)
        fields = json.loads(answer)
        return Admission(
            refused=fields["refused"] or None,
            calls=fields["calls"],
            streak=fields["streak"],
            replayed=bool(replayed),
            spent_usd=float(spent),
            raised_usd=float(raised),
        )

    def add_cost(self, run_id: str, step_id: str, usd: float) -> tuple[float, float]:
        keys = [f"{self._p}run:{run_id}", f"{self._p}costs:{run_id}"]
        before, after = self._run("ADD_COST", keys, [step_id, repr(float(usd)), self._ttl])
        return float(before), float(after)

    def budget(self, run_id: str) -> RunBudget:
        key = f"{self._p}run:{run_id}"
        calls, spent, raised = self._do(
            lambda: self._client.hmget(key, ["calls", "spent", "raised"])
        )
        return RunBudget(
            calls=int(calls or 0), spent_usd=float(spent or 0), raised_usd=float(raised or 0)
        )

    def raise_budget(self, run_id: str, usd: float) -> RunBudget:
        key = f"{self._p}run:{run_id}"
        pipe = self._client.pipeline()
        pipe.hincrbyfloat(key, "raised", usd)
        pipe.pexpire(key, self._ttl)
        self._do(pipe.execute)
        return self.budget(run_id)

    def take(
        self,
        key: str,
        *,
        capacity: float,
        per_second: float,
        amount: float,
        now: float,
        force: bool = False,
    ) -> float:
        args = [repr(float(x)) for x in (capacity, per_second, amount, now)]
        return float(self._run("TAKE", [f"{self._p}bucket:{key}"], [*args, int(force)]))

    def breaker_allow(self, key: str, *, now: float, cooldown: float) -> BreakerState:
        phase, failures, allowed, retry_after = self._run(
            "BREAKER_ALLOW", [f"{self._p}breaker:{key}"], [repr(now), repr(cooldown)]
        )
        return BreakerState(
            phase=phase, failures=failures, allowed=bool(allowed), retry_after=float(retry_after)
        )

    def breaker_record(self, key: str, *, ok: bool, now: float, threshold: int) -> BreakerState:
        phase, failures = self._run(
            "BREAKER_RECORD", [f"{self._p}breaker:{key}"], [int(ok), repr(now), threshold]
        )
        return BreakerState(phase=phase, failures=failures)

    def close(self) -> None:
        self._client.close()
