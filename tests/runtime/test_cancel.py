"""Cancel: parked runs stop at once, running ones at their next primitive, children with them."""

from __future__ import annotations

import threading
import time

import pytest

from tests.runtime.flows import CALLS
from tether import RunStatus, Tether
from tether.errors import RunStateError


def test_cancel_stops_a_sleeping_run_and_its_child(tether: Tether) -> None:
    run_id = tether.start("parent", {"seconds": 60})
    stop = threading.Event()
    tether.run(
        run_id,
        stop=stop,
        on_wait=lambda r: (
            stop.set()
            if r.status is RunStatus.WAITING
            and tether.inspect(run_id).children[0].status is RunStatus.SLEEPING
            else None
        ),
    )
    (child,) = tether.inspect(run_id).children
    assert child.status is RunStatus.SLEEPING
    tether.cancel(run_id)
    assert tether.status(run_id).status is RunStatus.CANCELLED
    assert tether.status(child.id).status is RunStatus.CANCELLED
    assert tether.run(run_id).status is RunStatus.CANCELLED  # nothing left to execute


def test_cancel_of_a_running_run_stops_it_at_the_next_step(tether: Tether) -> None:
    CALLS.clear()
    run_id = tether.start("steps", {"n": 20, "pause": 0.05})
    result: dict[str, RunStatus] = {}
    runner = threading.Thread(target=lambda: result.update(s=tether.run(run_id).status))
    runner.start()
    while CALLS["step 1"] == 0:
        time.sleep(0.01)
    tether.cancel(run_id)
    runner.join(10)
    assert result["s"] is RunStatus.CANCELLED
    assert sum(CALLS.values()) < 20  # it stopped; the remaining steps never ran


def test_cancel_of_a_finished_run_is_refused(tether: Tether) -> None:
    run = tether.run(tether.start("steps", {"n": 1}))
    with pytest.raises(RunStateError) as err:
        tether.cancel(run.id)
    assert "completed" in str(err.value)
