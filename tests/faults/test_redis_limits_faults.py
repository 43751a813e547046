"""I10 on a private Redis that goes away and comes back: budgets fail closed (every guarded call
is refused with `LimitsUnavailable`, a `RateLimited` naming Redis), the same store is used again
once Redis answers, and a run's keys expire once the run stops using them."""

from __future__ import annotations

import time

import pytest
import redis

from tests.faults.servers import PrivateRedis
from tether.errors import LimitsUnavailable, RateLimited
from tether.foundation.guards.contract import CallOutcome, GuardedCall
from tether.foundation.limits.backends.redis import RedisLimitsStore
from tether.foundation.limits.config import LimitsConfig
from tether.foundation.limits.guard import LimitsGuard

CONFIG = {"model_call_cap": 5, "cost_cap_usd": 1.0}


def call(step: str, run: str = "run-1") -> GuardedCall:
    return GuardedCall(run_id=run, workflow="w@1", step_id=step, kind="model", target=step)


def test_a_redis_that_is_down_refuses_every_call_and_one_that_returns_is_used_again(
    private_redis: PrivateRedis,
) -> None:
    store = RedisLimitsStore(private_redis.url, prefix="down:")
    guard = LimitsGuard(store, LimitsConfig.model_validate(CONFIG))
    try:
        guard.before(call("0.1"))
        private_redis.stop()
        with pytest.raises(LimitsUnavailable) as refused:
            guard.before(call("0.2"))
        assert isinstance(refused.value, RateLimited)
        assert f"Redis at {private_redis.url}" in str(refused.value)
        assert "refused until it answers" in str(refused.value)
        # a call made before Redis went keeps its result; the lost count is said, not raised
        [warning] = guard.after(call("0.1"), CallOutcome(ok=True, cost_usd=0.1))
        assert warning.outcome == "warn" and "not counted" in warning.reason
        private_redis.start()
        guard.before(call("0.2"))
        assert store.budget("run-1").calls == 1  # this Redis keeps nothing across a restart
    finally:
        store.close()


def test_a_runs_keys_expire_after_it_last_used_them_and_each_use_renews_them(
    private_redis: PrivateRedis,
) -> None:
    store = RedisLimitsStore(private_redis.url, prefix="ttl:", run_ttl_seconds=1.0)
    client = redis.Redis.from_url(private_redis.url)
    keys = ["ttl:run:run-2", "ttl:steps:run-2", "ttl:costs:run-2"]
    try:
        store.admit("run-2", "0.1", "fp", counted=True, call_cap=5, loop_after=3)
        store.add_cost("run-2", "0.1", 0.01)
        assert all(0 < client.pttl(k) <= 1000 for k in keys)
        time.sleep(0.6)
        store.admit("run-2", "0.2", "fp2", counted=True, call_cap=5, loop_after=3)
        assert all(client.pttl(k) > 600 for k in keys[:2])  # renewed by the use
        store.raise_budget("run-2", 1.0)
        assert client.pttl(keys[0]) > 600
        time.sleep(1.2)
        assert client.exists(*keys) == 0
        assert store.budget("run-2").calls == 0
    finally:
        store.close()
        client.close()
