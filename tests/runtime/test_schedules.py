"""Schedules: each tick fires once however many workers see it; missed ticks follow the
schedule's catchup policy."""

from __future__ import annotations

import threading
import time

import pytest

from tether import Tether
from tether.errors import InvalidInput
from tether.runtime.schedules import GRACE, fire_due


def start_with(t: Tether):  # type: ignore[no-untyped-def]
    return lambda workflow, input, key: t.start(workflow, input, key=key)


def test_a_tick_fires_once_however_many_workers_race_for_it(tether: Tether) -> None:
    s = tether.add_schedule("hourly", "0 * * * *", "steps", {"n": 1})
    due = s.next_at + 1
    results: list[list[str]] = []
    racers = [
        threading.Thread(
            target=lambda: results.append(
                fire_due(tether.checkpointer, start_with(tether), now=due)
            )
        )
        for _ in range(4)
    ]
    for r in racers:
        r.start()
    for r in racers:
        r.join()
    assert len(tether.list()) == 1  # one run for the tick
    assert {run_id for started in results for run_id in started} == {tether.list()[0].id}
    assert tether.schedules()[0].next_at == s.next_at + 3600


@pytest.mark.parametrize(("catchup", "expected_runs"), [("skip", 0), ("once", 1)])
def test_ticks_missed_while_no_worker_ran_follow_the_catchup_policy(
    tether: Tether,
    catchup: str,
    expected_runs: int,
) -> None:
    s = tether.add_schedule("every-5", "*/5 * * * *", "steps", {"n": 1}, catchup=catchup)
    ten_ticks_later = s.next_at + 10 * 300 + GRACE + 1
    fire_due(tether.checkpointer, start_with(tether), now=ten_ticks_later)
    assert len(tether.list()) == expected_runs  # never ten
    assert tether.schedules()[0].next_at > ten_ticks_later


def test_a_worker_fires_due_schedules_and_runs_them(tether: Tether) -> None:
    # Yearly, and due a second ago: one tick fires however long the worker takes (an every-
    # minute cron also fired the next minute's tick when a loaded worker crossed its boundary)
    tether.add_schedule("now", "0 0 1 1 *", "steps", {"n": 2})
    s = tether.schedules()[0]
    tether.checkpointer.advance_schedule("now", s.next_at, time.time() - 1)
    tether.worker().run(until_idle=True)
    (run,) = tether.list()
    assert run.key is not None and run.key.startswith("schedule:now:")
    assert tether.output(tether.status(run.id)) == {"total": 1}


def test_bad_cron_unknown_workflow_and_bad_input_are_refused_up_front(tether: Tether) -> None:
    with pytest.raises(InvalidInput, match="not a cron expression"):
        tether.add_schedule("bad", "every tuesday", "steps")
    with pytest.raises(InvalidInput, match="n"):
        tether.add_schedule("bad", "* * * * *", "steps", {"n": "x"})
    with pytest.raises(InvalidInput, match="catchup"):
        tether.add_schedule("bad", "* * * * *", "steps", catchup="always")
    assert tether.schedules() == []


def test_remove_schedule(tether: Tether) -> None:
    tether.add_schedule("gone", "* * * * *", "steps")
    tether.remove_schedule("gone")
    assert tether.schedules() == []
    with pytest.raises(InvalidInput, match="gone"):
        tether.remove_schedule("gone")


def test_a_tick_fires_exactly_once_with_three_worker_processes(make_tether) -> None:  # type: ignore[no-untyped-def]
    import time

    from tests.workers import start_worker, wait_for

    t = make_tether("sqlite")
    s = t.add_schedule("tick", "* * * * *", "steps", {"n": 1})
    t.checkpointer.advance_schedule("tick", s.next_at, time.time() + 0.5)  # a tick in 0.5 s
    workers = [start_worker(t.settings.data_path) for _ in range(3)]
    try:
        wait_for(lambda: any(r.status.value == "completed" for r in t.list()))
        time.sleep(1.0)  # every worker has polled past the tick by now
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait(10)
    runs = t.list()
    assert len(runs) == 1 and runs[0].key is not None and runs[0].key.startswith("schedule:tick:")
    assert t.schedules()[0].next_at > time.time()
