"""Forking a run from a step: the new run replays what came before it and runs on."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.runtime.flows import CALLS
from tether import RunStatus, Tether
from tether.errors import InvalidInput, RunStateError


def test_a_fork_replays_the_steps_before_it_and_runs_the_rest(tether: Tether) -> None:
    CALLS.clear()
    old = tether.start("steps", {"n": 4})
    assert tether.run(old).status is RunStatus.COMPLETED
    new = tether.fork(old, "3")
    forked = tether.status(new)
    assert forked.status is RunStatus.PENDING
    assert forked.meta["forked_from"] == {"run": old, "step": "3"}
    assert [e.step_id for e in tether.journal(new)] == ["1", "2"]
    run = tether.run(new)
    assert run.status is RunStatus.COMPLETED and tether.output(run) == {"total": 6}
    assert [CALLS[f"step {i}"] for i in range(4)] == [1, 1, 2, 2]  # steps 3 and 4 ran again
    assert [e.step_id for e in tether.journal(old)] == ["1", "2", "3", "4"]  # untouched


def test_a_fork_of_a_step_the_run_never_reached_or_of_a_live_run_is_refused(
    tether: Tether,
) -> None:
    done = tether.start("steps", {"n": 2})
    tether.run(done)
    with pytest.raises(InvalidInput, match="never reached step '9'"):
        tether.fork(done, "9")
    live = tether.start("nap", {"seconds": 60})
    stop = threading.Event()
    tether.run(live, stop=stop, on_wait=lambda _run: stop.set())
    assert tether.status(live).status is RunStatus.SLEEPING
    with pytest.raises(RunStateError, match="cancel_original; the CLI's --cancel-original"):
        tether.fork(live, "1")
    new = tether.fork(live, "1", cancel_original=True)
    assert tether.status(live).status is RunStatus.CANCELLED
    assert tether.status(new).status is RunStatus.PENDING


def test_a_forks_stream_holds_every_value_its_replay_wrote(tether: Tether) -> None:
    old = tether.start("streamer", {"n": 3, "log": "", "pause": 0.0})
    assert tether.run(old).status is RunStatus.COMPLETED
    new = tether.fork(old, "3")
    assert tether.run(new).status is RunStatus.COMPLETED
    assert [i.value for i in tether.stream(new, "progress")] == ['{"i":0}', '{"i":1}', '{"i":2}']


def test_a_fork_copies_the_tool_call_rows_before_the_step_and_calls_the_rest_anew(
    make_tether: Callable[..., Tether], tmp_path: Path
) -> None:
    t = make_tether("sqlite", workflows=["tests.runtime.flows", "tests.runtime.tool_flows"])
    outbox = tmp_path / "outbox.txt"
    old = t.start("add_then_mail", {"outbox": str(outbox)})
    assert t.run(old).status is RunStatus.COMPLETED
    tools = t.foundations.tools
    added, mailed = tools.lookup(old, "1"), tools.lookup(old, "2")
    assert added is not None and mailed is not None
    plan = t.plan_fork(old, "2")
    assert (plan.calls_again, plan.unsafe_again) == (["send_email"], ["send_email"])
    new = t.fork(old, "2")
    assert tools.lookup(new, "1") == added.model_copy(update={"run_id": new})  # the row, as sent
    assert tools.lookup(new, "2") is None  # after the step: not kept
    assert t.run(new).status is RunStatus.COMPLETED
    again = tools.lookup(new, "2")
    assert again is not None and again.started_at > mailed.started_at  # a new call, new key
    assert tools.lookup(new, "1") == added.model_copy(update={"run_id": new})  # not called again
    assert outbox.read_text().splitlines() == ["ops\ttotal 3", "ops\ttotal 3"]  # sent by each
    assert tools.lookup(old, "2") == mailed  # the old run's rows untouched
