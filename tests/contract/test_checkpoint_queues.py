"""I2 contract, queues: every checkpointer's claim admits a queue's runs by its limits (runs
holding a lease, per concurrency key, starts per window) and by priority, the same on memory,
SQLite and PostgreSQL. The multi-process receipt is tests/runtime/test_queues.py."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from tether.errors import ConfigurationError
from tether.foundation.checkpoint.contract import Accept, Checkpointer, NewRun, RunStatus, Wait
from tether.foundation.checkpoint.contract import WaitKind as Kind
from tether.foundation.checkpoint.queues import Queue, QueueState

ACCEPTS = [Accept(workflow="wf", version="1.*")]
LEASE = 30.0


def start(cp: Checkpointer, queue: str | None, key: str | None = None, priority: int = 0) -> str:
    run, _ = cp.create_run(
        NewRun(
            id=uuid.uuid4().hex,
            workflow="wf",
            version="1.0.0",
            input="{}",
            queue=queue,
            queue_key=key,
            priority=priority,
        )
    )
    time.sleep(0.002)  # distinct creation times: the order below is by age
    return run.id


def claimed(
    cp: Checkpointer, queues: list[Queue], limit: int = 10, lease: float = LEASE
) -> list[str]:
    return [c.run.id for c in cp.claim("w", ACCEPTS, limit, lease, queues=queues)]


def test_a_queue_holds_at_most_its_concurrency_leased(checkpointer: Checkpointer) -> None:
    reports = Queue("reports", concurrency=2)
    runs = [start(checkpointer, "reports") for _ in range(4)]
    first, second = checkpointer.claim("w", ACCEPTS, 10, LEASE, queues=[reports])
    assert [first.run.id, second.run.id] == runs[:2]
    assert claimed(checkpointer, [reports]) == []  # both slots are held
    checkpointer.complete(first.run.id, first.token, "1")
    assert claimed(checkpointer, [reports]) == [runs[2]]


def test_a_parked_run_holds_no_slot(checkpointer: Checkpointer) -> None:
    reports = Queue("reports", concurrency=1)
    first, second = start(checkpointer, "reports"), start(checkpointer, "reports")
    [claim] = checkpointer.claim("w", ACCEPTS, 10, LEASE, queues=[reports])
    assert claim.run.id == first
    nap = Wait(step_id="1", name="nap", kind=Kind.TIMER, deadline=time.time() + 60)
    assert checkpointer.park(first, claim.token, [nap]) == []
    assert claimed(checkpointer, [reports]) == [second]


def test_the_per_key_limit_holds_while_other_keys_run(checkpointer: Checkpointer) -> None:
    q = Queue("reports", concurrency=3, per_key=1)
    a1, a2 = start(checkpointer, "reports", "a"), start(checkpointer, "reports", "a")
    b1 = start(checkpointer, "reports", "b")
    assert claimed(checkpointer, [q]) == [a1, b1]
    assert claimed(checkpointer, [q]) == []
    assert checkpointer.get_run(a2).status is RunStatus.PENDING


def test_a_higher_priority_run_overtakes_older_waiting_ones(checkpointer: Checkpointer) -> None:
    q = Queue("reports", concurrency=1)
    old = [start(checkpointer, "reports") for _ in range(3)]
    urgent = start(checkpointer, "reports", priority=5)
    assert claimed(checkpointer, [q]) == [urgent]
    assert checkpointer.get_run(old[0]).status is RunStatus.PENDING


def test_the_start_rate_counts_first_claims_in_the_window(checkpointer: Checkpointer) -> None:
    q = Queue("reports", starts=2, per=0.5)
    runs = [start(checkpointer, "reports") for _ in range(3)]
    assert claimed(checkpointer, [q]) == runs[:2]
    assert claimed(checkpointer, [q]) == []
    time.sleep(0.6)
    assert claimed(checkpointer, [q]) == [runs[2]]


def test_an_expired_lease_is_taken_over_in_its_own_slot(checkpointer: Checkpointer) -> None:
    q = Queue("reports", concurrency=1)
    crashed, waiting = start(checkpointer, "reports"), start(checkpointer, "reports")
    assert claimed(checkpointer, [q], lease=0.05) == [crashed]
    time.sleep(0.1)
    assert claimed(checkpointer, [q]) == [crashed]  # the slot it held, not the waiting run's
    assert checkpointer.get_run(waiting).status is RunStatus.PENDING


def test_a_queue_the_claimer_does_not_know_is_left_alone(checkpointer: Checkpointer) -> None:
    unqueued, queued = start(checkpointer, None), start(checkpointer, "reports")
    assert claimed(checkpointer, []) == [unqueued]
    assert checkpointer.get_run(queued).status is RunStatus.PENDING


def test_racing_claimers_never_exceed_the_limits(checkpointer: Checkpointer) -> None:
    q = Queue("reports", concurrency=2, per_key=1)
    for i in range(12):
        start(checkpointer, "reports", key=f"k{i % 3}")
    got: list[str] = []

    def claimer() -> None:
        got.extend(claimed(checkpointer, [q], limit=3))

    threads = [threading.Thread(target=claimer) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    keys = [checkpointer.get_run(r).queue_key for r in got]
    assert len(got) == 2 and len(set(keys)) == 2


def test_queue_states_count_running_and_waiting(checkpointer: Checkpointer) -> None:
    q = Queue("reports", concurrency=1)
    first = start(checkpointer, "reports")
    start(checkpointer, "reports")
    claimed(checkpointer, [q])
    [state] = checkpointer.queue_states(["reports"])
    assert (state.name, state.running, state.waiting) == ("reports", 1, 1)
    assert (
        state.oldest_wait is not None and state.oldest_wait > checkpointer.get_run(first).created_at
    )
    assert checkpointer.queue_states(["idle"]) == [QueueState("idle", 0, 0, None)]


@pytest.mark.parametrize("limit", ["concurrency", "per_key", "starts"])
def test_a_queue_limit_below_one_is_refused(limit: str) -> None:
    with pytest.raises(ConfigurationError, match=f"{limit} must be a whole number of at least 1"):
        Queue("reports", **{limit: 0})  # type: ignore[arg-type]
