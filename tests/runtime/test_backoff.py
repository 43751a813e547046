"""Retry backoff: a long one parks the run on a durable timer instead of holding its worker."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from tests.runtime.flows import CALLS
from tether import RunStatus, Tether
from tether.foundation.checkpoint.contract import EntryKind, EntryStatus


def test_a_backoff_longer_than_the_lease_parks_the_run_until_the_next_attempt(
    tether: Tether,
) -> None:
    CALLS.clear()
    run_id = tether.start("backoff", {"key": "parked", "backoff": 2.0})  # the lease is 1 s
    stop = threading.Event()
    tether.run(run_id, stop=stop, on_wait=lambda _run: stop.set())
    parked = tether.status(run_id)
    assert parked.status is RunStatus.SLEEPING and parked.lease_owner is None
    assert CALLS["parked"] == 1
    [failed] = tether.journal(run_id)
    assert parked.wake_at is not None
    assert abs(parked.wake_at - (failed.finished_at + 2.0)) < 0.5

    time.sleep(1.0)  # the worker went away; another picks the run up inside the window
    assert tether.run(run_id).status is RunStatus.COMPLETED
    journal = tether.journal(run_id)
    assert [(e.step_id, e.kind, e.status, e.attempt) for e in journal] == [
        ("1", EntryKind.STEP, EntryStatus.ATTEMPT, 1),
        ("1~1", EntryKind.SLEEP, EntryStatus.OK, 1),
        ("1", EntryKind.STEP, EntryStatus.OK, 2),
    ]
    assert "attempt 1 of parked failed" in (journal[0].error or "")
    second = journal[2]
    assert parked.wake_at <= second.started_at < parked.wake_at + 0.8  # not 2 s after the restart
    assert CALLS["parked"] == 2


def test_a_backoff_shorter_than_the_lease_waits_on_the_runs_thread(tether: Tether) -> None:
    CALLS.clear()
    run_id = tether.start("backoff", {"key": "inline", "backoff": 0.05})
    parked: list[RunStatus] = []
    assert tether.run(run_id, on_wait=lambda run: parked.append(run.status)).status is (
        RunStatus.COMPLETED
    )
    assert parked == [] and CALLS["inline"] == 2
    assert [e.kind for e in tether.journal(run_id)] == [EntryKind.STEP, EntryKind.STEP]


def test_a_tool_calls_long_backoff_parks_the_run_too(tether: Tether, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    run_id = tether.start("backoff", {"key": "tool", "backoff": 1.5, "log": str(log)})
    stop = threading.Event()
    tether.run(run_id, stop=stop, on_wait=lambda _run: stop.set())
    parked = tether.status(run_id)
    assert parked.status is RunStatus.SLEEPING and parked.wake_at is not None
    assert log.read_text().splitlines() == ["call"]
    run = tether.run(run_id)
    assert run.status is RunStatus.COMPLETED and tether.output(run) == {"total": 2}
    journal = tether.journal(run_id)
    assert [(e.step_id, e.kind, e.status) for e in journal] == [
        ("1", EntryKind.TOOL, EntryStatus.ATTEMPT),
        ("1~1", EntryKind.SLEEP, EntryStatus.OK),
        ("1", EntryKind.TOOL, EntryStatus.OK),
    ]
    assert journal[2].started_at >= parked.wake_at
