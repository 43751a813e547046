"""What the temporal engine does beyond the shared runtime suite: a large step result stays
out of history, cancel cascades to an invoked child, wait_for_event keeps tether's match and
timeout semantics over Temporal signals, and a long loop continues as new past the history
bound."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.runtime.flows import CALLS
from tether import RunStatus, Tether
from tether.foundation.checkpoint.contract import NewRun, RunFilter, Wait, WaitKind
from tether.foundation.engine.backends.temporal.activities import Activities, claim_for_engine
from tether.foundation.engine.backends.temporal.engine import TemporalEngine
from tether.foundation.engine.backends.temporal.messages import Finish, WaitCall

pytestmark = pytest.mark.temporal


@pytest.fixture
def t(make_tether: Callable[..., Tether], temporal_server: str) -> Tether:
    return make_tether(
        "sqlite",
        engine="temporal",
        temporal_address=temporal_server,
        temporal_queue_prefix=f"t{uuid.uuid4().hex[:12]}",
    )


@pytest.fixture
def running(t: Tether) -> Iterator[Callable[[str], threading.Thread]]:
    """Follow runs on threads (the engine's worker executes them meanwhile)."""
    threads: list[threading.Thread] = []

    def follow(run_id: str) -> threading.Thread:
        th = threading.Thread(target=t.run, args=(run_id,), daemon=True)
        th.start()
        threads.append(th)
        return th

    yield follow
    for th in threads:
        th.join(30)


def _until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def test_a_3_mb_step_result_goes_to_the_blob_store_not_into_history(t: Tether) -> None:
    size = 3 * 1024 * 1024  # over Temporal's 2 MB payload limit
    run = t.run(t.start("blob", {"size": size}))
    assert run.status is RunStatus.COMPLETED and t.output(run) == {"total": size}
    (entry,) = t.journal(run.id)
    assert entry.value is not None and "$blob" in entry.value and len(entry.value) < 200


def test_an_invoked_child_is_its_own_run_and_its_output_returns_to_the_parent(
    t: Tether,
) -> None:
    run = t.run(t.start("parent", {"seconds": 0.05}))
    assert run.status is RunStatus.COMPLETED and t.output(run) == {"total": 4}
    (child,) = t.list(limit=10, workflow="nap")
    assert child.parent_id == run.id and child.status is RunStatus.COMPLETED


def test_cancel_cascades_to_the_invoked_child(
    t: Tether, running: Callable[[str], threading.Thread]
) -> None:
    parent = t.start("parent", {"seconds": 600})
    running(parent)
    children = RunFilter(parent_id=parent, limit=10)
    _until(lambda: len(t.engine.list_runs(children)) == 1)
    (child,) = t.engine.list_runs(children)
    _until(lambda: len(t.journal(child.id)) == 1)  # the child executes: its first step is done
    t.cancel(parent)
    _until(lambda: t.status(parent).status is RunStatus.CANCELLED)
    _until(lambda: t.status(child.id).status is RunStatus.CANCELLED)


def test_a_child_that_held_its_lease_when_its_parent_was_cancelled_ends_at_its_park(
    t: Tether,
) -> None:
    """The cascade's race that loaded machines met: the child had finished its first step and
    not yet parked on its sleep when its parent's cancel reached I2, so I2 could only request
    the child's cancel. Its park ends it there, as the local driver ends a run at its next
    primitive, without waiting for Temporal to deliver a cancel to its execution; that
    execution's own cancelled end, arriving later, finds the run ended and writes nothing."""
    engine: TemporalEngine = t.engine  # type: ignore[assignment]
    cp, activities = t.checkpointer, Activities(engine.services)
    parent, _ = cp.create_run(
        NewRun(id=f"p-{uuid.uuid4().hex[:8]}", workflow="parent", version="1.0.0", input="{}")
    )
    child, _ = cp.create_run(
        NewRun(
            id=f"c-{uuid.uuid4().hex[:8]}", workflow="nap", version="1.0.0",
            input='{"seconds": 600}', parent_id=parent.id, parent_step="1",
        )
    )  # fmt: skip
    token = claim_for_engine(engine.services, child.id)
    assert token is not None

    t.cancel(parent.id)  # no Temporal execution exists for either: only I2 can end them
    held = t.status(child.id)
    assert held.status is RunStatus.RUNNING and held.cancel_requested

    sleep = Wait(step_id="2", name="nap", kind=WaitKind.TIMER, deadline=time.time() + 600)
    parked = asyncio.run(activities.wait(WaitCall(run_id=child.id, token=token, wait=sleep)))
    assert parked.ended and t.status(child.id).status is RunStatus.CANCELLED

    late = Finish(run_id=child.id, token=token, status="cancelled")
    asyncio.run(activities.finish(late))  # failed before: "lease on run ... lost"
    assert t.status(child.id).status is RunStatus.CANCELLED


def test_wait_for_event_takes_only_a_matching_event(
    t: Tether, running: Callable[[str], threading.Thread]
) -> None:
    run_id = t.start("approval", {"ticket": "T-1"})
    running(run_id)
    t.send_event("approved", {"ticket": "T-2", "by": "bo"})  # another ticket's
    t.send_event("approved", {"ticket": "T-1", "by": "ana"})
    _until(lambda: t.status(run_id).status is RunStatus.COMPLETED)
    assert t.output(t.status(run_id)) == {"answer": {"ticket": "T-1", "by": "ana"}}


def test_wait_for_event_times_out_with_none(t: Tether) -> None:
    run = t.run(t.start("approval", {"ticket": "T-3", "timeout": 0.2}))
    assert run.status is RunStatus.COMPLETED and t.output(run) == {"answer": None}


def test_a_finished_run_takes_no_event(t: Tether) -> None:
    from tether.errors import RunStateError

    run = t.run(t.start("approval", {"ticket": "T-4", "timeout": 0.1}))
    with pytest.raises(RunStateError):
        t.send_event("approved", {"ticket": "T-4"}, run=run.id)


def _executions(t: Tether, run_id: str) -> list[str]:
    """The statuses of the run's Temporal executions, oldest first."""

    async def statuses() -> list[str]:
        client = await t.engine.client()  # type: ignore[attr-defined]
        wid = t.engine.execution_id(run_id)  # type: ignore[attr-defined]
        found = [e async for e in client.list_workflows(f"WorkflowId = '{wid}'")]
        return [e.status.name for e in sorted(found, key=lambda e: e.start_time)]

    return t.engine._call(statuses())  # type: ignore[attr-defined, no-any-return]


def test_a_long_loop_continues_as_new_past_the_history_bound_and_its_result_is_unchanged(
    make_tether: Callable[..., Tether], temporal_server: str
) -> None:
    CALLS.clear()
    t = make_tether(
        "sqlite",
        engine="temporal",
        temporal_address=temporal_server,
        temporal_queue_prefix=f"t{uuid.uuid4().hex[:12]}",
        temporal_history_events=40,  # about six steps an execution
    )
    run = t.run(t.start("steps", {"n": 30}))
    assert run.status is RunStatus.COMPLETED and t.output(run) == {"total": sum(range(30))}
    assert all(CALLS[f"step {i}"] == 1 for i in range(30))  # none ran again after a turn
    assert len(t.journal(run.id)) == 30
    # the run's end is written in I2 just before its last execution closes
    _until(lambda: _executions(t, run.id)[-1] == "COMPLETED")
    executions = _executions(t, run.id)
    assert len(executions) >= 4 and set(executions[:-1]) == {"CONTINUED_AS_NEW"}
