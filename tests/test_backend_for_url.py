"""One rule picks the backend of every interface that stores rows from its database URL: the
backend named for the URL's scheme. The same shared URL therefore lands every interface on the
same kind of database, and limits, which keep counters rather than rows, follow a limits URL
they can use and otherwise stay in the data directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.guard_servers import REDIS, redis_prefix
from tether import Settings, Tether
from tether.foundation.cost.attributor import open_store
from tether.foundation.limits.config import open_limits_store
from tether.foundation.loader import backend_for_url
from tether.foundation.policy.config import open_audit_log
from tether.foundation.tools.config import open_tool_results


@pytest.mark.parametrize(
    ("url", "backend"),
    [
        ("sqlite:////var/lib/tether.db", "sqlite"),
        ("postgresql://u@db/tether", "postgres"),
        ("postgres://u@db/tether", "postgres"),
        ("POSTGRESQL://u@db/tether", "postgres"),
        ("memory://", "memory"),
        ("memory:", "memory"),
    ],
)
def test_the_backend_is_the_one_named_for_the_scheme(url: str, backend: str) -> None:
    for interface in ("checkpoint", "tool_results", "cost", "audit"):
        assert backend_for_url(interface, url) == backend


def test_one_shared_url_puts_every_store_on_the_same_kind_of_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TETHER_DATABASE_URL", "memory://")
    settings = Settings(data_dir=tmp_path, trace="memory")
    stores = [open_tool_results(settings), open_store(settings), open_audit_log(settings)]
    with Tether(settings) as t:
        names = [type(s).__name__ for s in [*stores, t.checkpointer]]
    assert names == ["MemoryToolResults", "MemoryCostStore", "MemoryAuditLog", "MemoryCheckpointer"]
    assert not (tmp_path / "tether.db").exists()


def test_limits_keep_their_counters_here_when_the_shared_url_holds_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TETHER_DATABASE_URL", "postgresql://u@db.example/tether")
    store = open_limits_store(Settings(data_dir=tmp_path))
    assert type(store).__name__ == "SqliteLimitsStore"
    store.close()
    assert (tmp_path / "tether.db").exists()


@pytest.mark.redis
def test_a_redis_limits_url_gives_the_redis_store_on_that_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with redis_prefix() as prefix:
        monkeypatch.setenv("TETHER_LIMITS_DATABASE_URL", REDIS)
        settings = Settings(data_dir=tmp_path, limits={"options": {"prefix": prefix}})
        store = open_limits_store(settings)
        assert type(store).__name__ == "RedisLimitsStore"
        store.raise_budget("run-1", 2.5)
        store.close()
        import redis

        with redis.Redis.from_url(REDIS) as client:
            assert client.keys(f"{prefix}*")  # the counters are on that server
