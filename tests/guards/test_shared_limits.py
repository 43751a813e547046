"""Two worker processes sharing Redis together respect one rate limit and see one breaker."""

from __future__ import annotations

import multiprocessing

import pytest

from tests.fakes.guard_servers import REDIS, redis_prefix
from tether.errors import RateLimited
from tether.foundation.guards.contract import GuardedCall
from tether.foundation.limits.backends.redis import RedisLimitsStore
from tether.foundation.limits.config import LimitsConfig
from tether.foundation.limits.guard import LimitsGuard

pytestmark = pytest.mark.redis

CONFIG = {"backends": {"api": {"requests_per_minute": 10, "failure_threshold": 3}}}


def _worker(prefix: str) -> int:
    """One worker's attempts on backend `api` at one instant; how many were let through."""
    store = RedisLimitsStore(REDIS, prefix=prefix)
    guard = LimitsGuard(store, LimitsConfig.model_validate(CONFIG), clock=lambda: 500.0)
    allowed = 0
    for i in range(15):
        call = GuardedCall(
            run_id=f"run-{i}", workflow="w@1", step_id="0.1", kind="model", target="t",
            backend="api",
        )  # fmt: skip
        try:
            guard.before_backend(call)
            allowed += 1
        except RateLimited:
            pass
    store.close()
    return allowed


def test_two_worker_processes_sharing_redis_respect_one_rate_limit() -> None:
    with redis_prefix() as prefix, multiprocessing.get_context("spawn").Pool(2) as pool:
        counts = pool.map(_worker, [prefix, prefix])
    assert sum(counts) == 10


def test_failures_seen_by_two_workers_open_one_shared_breaker() -> None:
    with redis_prefix() as prefix:
        workers = [RedisLimitsStore(REDIS, prefix=prefix) for _ in range(2)]
        for i in range(3):
            workers[i % 2].breaker_record("api", ok=False, now=1.0, threshold=3)
        assert not workers[0].breaker_allow("api", now=2.0, cooldown=30).allowed
        assert not workers[1].breaker_allow("api", now=2.0, cooldown=30).allowed
        for w in workers:
            w.close()
