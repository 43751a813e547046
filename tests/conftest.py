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


# The engine contract suite: every test that takes `tether` runs on each engine, over the
# checkpointers that engine is tested with (its runs index, waits and held events live there).
ENGINES = [("local", "memory"), ("local", "sqlite"), ("local", "postgres")]


@pytest.fixture(params=ENGINES, ids=lambda p: "-".join(p))
def tether(request: pytest.FixtureRequest, make_tether: Callable[..., Tether]) -> Iterator[Tether]:
    """One Tether per engine and checkpointer backend the runtime is tested over; on
    PostgreSQL each test gets a schema of its own (skipped, saying why, only when no server
    answers)."""
    engine, checkpoint = request.param
    if checkpoint != "postgres":
        yield make_tether(checkpoint, engine=engine)
        return
    from tests.postgres.server import fresh_schema

    with fresh_schema("rt") as (url, schema):
        yield make_tether(
            "postgres", engine=engine, checkpoint_database_url=url, checkpoint_schema=schema
        )
