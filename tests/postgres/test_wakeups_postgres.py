"""Workers on PostgreSQL are woken, not left to their poll: a run made runnable by another
process's checkpointer (NOTIFY on the schema's channel), or a parked run's timer falling due,
ends a `wait_for_work` long before its timeout."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.postgres.server import fresh_schema
from tether.foundation.checkpoint.backends.postgres import PostgresCheckpointer
from tether.foundation.checkpoint.contract import Accept, NewRun, Wait, WaitKind

pytestmark = pytest.mark.postgres
ACCEPTS = [Accept(workflow="wf", version="*")]


@pytest.fixture
def two_processes() -> Iterator[tuple[PostgresCheckpointer, PostgresCheckpointer]]:
    """Two checkpointers on one schema, as a client and a worker process would have."""
    with fresh_schema("wake") as (url, schema):
        client, worker = (
            PostgresCheckpointer(url, schema=schema),
            PostgresCheckpointer(url, schema=schema),
        )
        yield client, worker
        client.close()
        worker.close()


def returns_early(wait: Callable[[float], None], then: Callable[[], object]) -> bool:
    """Start `wait(60)`, do `then`, and say whether the wait ended well before its timeout."""
    wait(0.0)  # subscribe before the change, as a worker's listener already is
    waiter = threading.Thread(target=wait, args=(60.0,))
    waiter.start()
    then()
    waiter.join(timeout=30)
    return not waiter.is_alive()


def new_run(cp: PostgresCheckpointer) -> str:
    run_id = uuid.uuid4().hex
    cp.create_run(NewRun(id=run_id, workflow="wf", version="1.0.0", input="{}"))
    return run_id


def test_a_run_started_elsewhere_wakes_the_worker(
    two_processes: tuple[PostgresCheckpointer, PostgresCheckpointer],
) -> None:
    client, worker = two_processes
    assert returns_early(worker.wait_for_work, lambda: new_run(client))


def test_an_event_sent_elsewhere_wakes_the_worker(
    two_processes: tuple[PostgresCheckpointer, PostgresCheckpointer],
) -> None:
    client, worker = two_processes
    run_id = new_run(client)
    [claim] = worker.claim("w", ACCEPTS, 1, 30.0)
    wait = Wait(step_id="1", name="w", kind=WaitKind.EVENT, event="go")
    assert worker.park(run_id, claim.token, [wait]) == []
    assert returns_early(worker.wait_for_work, lambda: client.send_event("go", "{}"))


def test_a_timer_falling_due_wakes_the_worker(
    two_processes: tuple[PostgresCheckpointer, PostgresCheckpointer],
) -> None:
    client, worker = two_processes
    run_id = new_run(client)
    [claim] = worker.claim("w", ACCEPTS, 1, 30.0)
    nap = Wait(step_id="1", name="nap", kind=WaitKind.TIMER, deadline=time.time() + 0.5)
    assert worker.park(run_id, claim.token, [nap]) == []
    assert returns_early(worker.wait_for_work, lambda: None)
