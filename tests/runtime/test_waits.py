"""Timers, events and children: a parked run holds nothing and picks up where it stopped."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from tests.runtime.flows import CALLS
from tether import RunStatus, Tether
from tether.errors import RunStateError


def _run_until_parked(t: Tether, run_id: str) -> RunStatus:
    stop = threading.Event()
    t.run(run_id, stop=stop, on_wait=lambda _run: stop.set())
    return t.status(run_id).status


def test_sleep_survives_a_restart_and_runs_no_step_twice(
    make_tether: Callable[..., Tether],
) -> None:
    CALLS.clear()
    first = make_tether("sqlite")
    run_id = first.start("nap", {"seconds": 0.3})
    assert _run_until_parked(first, run_id) is RunStatus.SLEEPING
    assert first.status(run_id).lease_owner is None  # parked: no worker holds it
    first.close()
    second = make_tether("sqlite")  # a new process after a deploy
    run = second.run(run_id)
    assert run.status is RunStatus.COMPLETED
    assert CALLS["before"] == 1 and CALLS["after"] == 1
    assert run.updated_at - run.created_at >= 0.3


def test_wait_for_event_wakes_on_matching_event_only(tether: Tether) -> None:
    run_id = tether.start("approval", {"ticket": "T-1"})
    assert _run_until_parked(tether, run_id) is RunStatus.WAITING
    assert tether.send_event("approved", {"ticket": "T-2"}).woken == []
    assert tether.send_event("approved", {"ticket": "T-1", "by": "ana"}).woken == [run_id]
    run = tether.run(run_id)
    assert tether.output(run) == {"answer": {"ticket": "T-1", "by": "ana"}}


def test_event_sent_before_the_wait_is_not_lost(tether: Tether) -> None:
    run_id = tether.start("approval", {"ticket": "T-9"})
    tether.send_event("approved", {"ticket": "T-9", "by": "early"})  # before the run even ran
    run = tether.run(run_id)
    assert tether.output(run) == {"answer": {"ticket": "T-9", "by": "early"}}


def test_event_sent_before_the_run_existed_is_not_delivered(tether: Tether) -> None:
    tether.send_event("approved", {"ticket": "T-5", "by": "stale"})
    run_id = tether.start("approval", {"ticket": "T-5", "timeout": 0.1})
    run = tether.run(run_id)
    assert tether.output(run) == {"answer": None}


def test_one_event_wakes_each_waiting_run_once(tether: Tether) -> None:
    a = tether.start("approval", {"ticket": "T-7"})
    b = tether.start("approval", {"ticket": "T-7"})
    for run_id in (a, b):
        _run_until_parked(tether, run_id)
    receipt = tether.send_event("approved", {"ticket": "T-7"})
    assert sorted(receipt.woken) == sorted([a, b])
    for run_id in (a, b):
        assert tether.output(tether.run(run_id)) == {"answer": {"ticket": "T-7"}}


def test_wait_for_event_returns_none_after_its_timeout(tether: Tether) -> None:
    started = time.time()
    run = tether.run(tether.start("approval", {"ticket": "never", "timeout": 0.2}))
    assert tether.output(run) == {"answer": None}
    assert time.time() - started >= 0.2


def test_event_for_a_finished_run_is_refused(tether: Tether) -> None:
    run = tether.run(tether.start("steps", {"n": 1}))
    with pytest.raises(RunStateError):
        tether.send_event("approved", {"ticket": "x"}, run=run.id)


def test_child_workflow_result_reaches_the_parent(tether: Tether) -> None:
    CALLS.clear()
    run = tether.run(tether.start("parent", {"seconds": 0.05}))
    assert run.status is RunStatus.COMPLETED
    assert tether.output(run) == {"total": 4}
    (child,) = tether.inspect(run.id).children
    assert child.status is RunStatus.COMPLETED and child.parent_id == run.id
    assert CALLS["before"] == 1 and CALLS["after"] == 1
