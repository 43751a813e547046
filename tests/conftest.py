"""Fixtures shared by every suite: a `Tether` on a fresh data dir with sub-second leases."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tether import Settings, Tether

FAST = {"poll_interval": 0.02, "lease_seconds": 1.0}


@pytest.fixture
def make_tether(tmp_path: Path) -> Iterator[Callable[..., Tether]]:
    """Build Tether instances over one data dir, as separate processes would see it."""
    opened: list[Tether] = []

    def make(checkpoint: str = "sqlite", **overrides: Any) -> Tether:
        options: dict[str, Any] = {
            "data_dir": tmp_path / ".tether",
            "checkpoint": checkpoint,
            "trace": "memory",
            "workflows": ["tests.runtime.flows"],
            **FAST,
            **overrides,
        }
        t = Tether(Settings(**options))
        opened.append(t)
        return t

    yield make
    for t in opened:
        t.close()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def tether(request: pytest.FixtureRequest, make_tether: Callable[..., Tether]) -> Iterator[Tether]:
    """One Tether per checkpointer backend the runtime is tested over; on PostgreSQL each test
    gets a schema of its own (skipped, saying why, only when no server answers)."""
    if request.param != "postgres":
        yield make_tether(request.param)
        return
    from tests.postgres.server import fresh_schema

    with fresh_schema("rt") as (url, schema):
        yield make_tether("postgres", checkpoint_database_url=url, checkpoint_schema=schema)
