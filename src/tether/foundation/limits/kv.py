"""The limits logic once, over a key-value transaction: memory and SQLite differ only in where
the values live and how a transaction is made atomic (a lock; `BEGIN IMMEDIATE`).

Keys: `run/<run>` (calls, spend, raises, last fingerprint and streak), `step/<run>/<step>` (the
admission given at that step), `cost/<run>/<step>`, `bucket/<key>`, `breaker/<key>`. The Redis
backend keeps the same shapes in hashes and runs the same steps as Lua scripts.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from tether.foundation.limits.contract import Admission, BreakerState, Refusal, RunBudget


class Kv(Protocol):
    """`get_many` and `put_many` let an intent that touches two keys read them in one
    statement and write them in one (SQLite: four statements an admission, not six)."""

    def get(self, key: str) -> dict[str, Any] | None: ...

    def get_many(self, keys: Sequence[str]) -> list[dict[str, Any] | None]: ...

    def put(self, key: str, value: dict[str, Any]) -> None: ...

    def put_many(self, values: dict[str, dict[str, Any]]) -> None: ...


def _fresh_run() -> dict[str, Any]:
    return {"calls": 0, "spent": 0.0, "raised": 0.0, "fp": "", "streak": 0}


def _run(kv: Kv, run_id: str) -> dict[str, Any]:
    return kv.get(f"run/{run_id}") or _fresh_run()


class KvLimitsStore(ABC):
    @abstractmethod
    def _transaction(self) -> AbstractContextManager[Kv]:
        """Everything done with the yielded Kv happens atomically, or not at all."""

    def _peek(self, key: str) -> dict[str, Any] | None:
        """One value as last committed, for an intent that writes nothing when it finds it so;
        a dialect may read it without taking a write transaction."""
        with self._transaction() as kv:
            return kv.get(key)

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
        run_key, step_key = f"run/{run_id}", f"step/{run_id}/{step_id}"
        with self._transaction() as kv:
            stored, seen = kv.get_many((run_key, step_key))
            run = stored or _fresh_run()
            spent, raised = run["spent"], run["raised"]
            # Judged afresh every time, a replay too, and never stored: a paused run whose
            # budget a person raised asks again at the same step.
            if cost_cap is not None and spent >= cost_cap + raised:
                return Admission(
                    refused="cost_cap", calls=run["calls"], streak=0, spent_usd=spent,
                    raised_usd=raised,
                )  # fmt: skip
            if seen is not None:
                return Admission(**seen, spent_usd=spent, raised_usd=raised, replayed=True)
            streak = run["streak"] + 1 if run["fp"] == fingerprint else 1
            refused: Refusal | None = None
            if counted and run["calls"] >= call_cap:
                refused = "call_cap"
            elif streak >= loop_after:
                refused = "loop"
            answer = {"refused": refused, "calls": run["calls"], "streak": streak}
            if refused is None:
                run["calls"] += 1 if counted else 0
                run["fp"], run["streak"] = fingerprint, streak
                answer["calls"] = run["calls"]
                kv.put_many({run_key: run, step_key: answer})
            else:
                kv.put(step_key, answer)
            return Admission(**answer, spent_usd=spent, raised_usd=raised)

    def add_cost(self, run_id: str, step_id: str, usd: float) -> tuple[float, float]:
        run_key, cost_key = f"run/{run_id}", f"cost/{run_id}/{step_id}"
        with self._transaction() as kv:
            stored, cost = kv.get_many((run_key, cost_key))
            run = stored or _fresh_run()
            previous = (cost or {"usd": 0.0})["usd"]
            before = run["spent"]
            run["spent"] = before + usd - previous
            kv.put_many({cost_key: {"usd": usd}, run_key: run})
            return before, run["spent"]

    def budget(self, run_id: str) -> RunBudget:
        with self._transaction() as kv:
            run = _run(kv, run_id)
        return RunBudget(calls=run["calls"], spent_usd=run["spent"], raised_usd=run["raised"])

    def raise_budget(self, run_id: str, usd: float) -> RunBudget:
        with self._transaction() as kv:
            run = _run(kv, run_id)
            run["raised"] += usd
            kv.put(f"run/{run_id}", run)
        return RunBudget(calls=run["calls"], spent_usd=run["spent"], raised_usd=run["raised"])

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
        with self._transaction() as kv:
            bucket = kv.get(f"bucket/{key}") or {"level": capacity, "at": now}
            level = min(capacity, bucket["level"] + max(0.0, now - bucket["at"]) * per_second)
            need = max(amount, 1.0)
            wait = 0.0 if force or level >= need else (need - level) / per_second
            if wait == 0.0:
                level -= amount
            kv.put(f"bucket/{key}", {"level": level, "at": max(now, bucket["at"])})
            return wait

    def breaker_allow(self, key: str, *, now: float, cooldown: float) -> BreakerState:
        seen = self._peek(f"breaker/{key}")
        if seen is None or seen["phase"] == "closed":  # every call's case: nothing to write
            return BreakerState(phase="closed", failures=0 if seen is None else seen["failures"])
        with self._transaction() as kv:
            b = _breaker(kv, key)
            if b["phase"] == "closed":
                return BreakerState(phase="closed", failures=b["failures"])
            since = now - (b["opened_at"] if b["phase"] == "open" else b["probe_at"])
            if since < cooldown:
                return BreakerState(
                    phase=b["phase"],
                    failures=b["failures"],
                    allowed=False,
                    retry_after=cooldown - since,
                )
            b["phase"], b["probe_at"] = "half_open", now
            kv.put(f"breaker/{key}", b)
            return BreakerState(phase="half_open", failures=b["failures"])

    def breaker_record(self, key: str, *, ok: bool, now: float, threshold: int) -> BreakerState:
        if ok:
            seen = self._peek(f"breaker/{key}")
            if seen is None or (seen["phase"] == "closed" and seen["failures"] == 0):
                return BreakerState(phase="closed", failures=0)  # already what it would write
        with self._transaction() as kv:
            before = _breaker(kv, key)
            b = dict(before)
            if ok:
                b["phase"], b["failures"] = "closed", 0
            else:
                b["failures"] += 1
                if b["phase"] == "half_open" or b["failures"] >= threshold:
                    b["phase"], b["opened_at"] = "open", now
            if b != before:  # a success on a breaker another worker closed since: unchanged
                kv.put(f"breaker/{key}", b)
            return BreakerState(phase=b["phase"], failures=b["failures"])


def _breaker(kv: Kv, key: str) -> dict[str, Any]:
    return kv.get(f"breaker/{key}") or {
        "phase": "closed",
        "failures": 0,
        "opened_at": 0.0,
        "probe_at": 0.0,
    }


class DictKv:
    """A Kv over a plain dict; values are copied in and out so callers can't alias them."""

    def __init__(self, data: dict[str, dict[str, Any]]) -> None:
        self._data = data

    def get(self, key: str) -> dict[str, Any] | None:
        value = self._data.get(key)
        return None if value is None else dict(value)

    def get_many(self, keys: Sequence[str]) -> list[dict[str, Any] | None]:
        return [self.get(key) for key in keys]

    def put(self, key: str, value: dict[str, Any]) -> None:
        self._data[key] = dict(value)

    def put_many(self, values: dict[str, dict[str, Any]]) -> None:
        for key, value in values.items():
            self.put(key, value)
