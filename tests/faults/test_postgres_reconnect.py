"""The reconnect rules of the PostgreSQL checkpointer, one fault at a time on the shared server
(nothing here stops it): an append (or a shared commit) whose commit landed but whose answer
was lost counts as done when it is tried again, and one whose lease moved on meanwhile is
refused, not written."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from tests.contract.test_checkpoint_contract import claim, start, step
from tests.postgres.server import fresh_schema
from tether.errors import DatabaseUnavailable
from tether.foundation.checkpoint.backends.postgres import PostgresCheckpointer
from tether.foundation.checkpoint.contract import Append, LeaseLost

pytestmark = pytest.mark.postgres


@pytest.fixture
def cp() -> Iterator[PostgresCheckpointer]:
    with fresh_schema("reconnect") as (url, schema):
        checkpointer = PostgresCheckpointer(url, schema, reconnect_seconds=5)
        yield checkpointer
        checkpointer.close()


def fail_first_append(cp: PostgresCheckpointer, fault: Callable[[Callable[[], int]], None]) -> None:
    """The next append's first try calls `fault` with the real statement, then reports its
    connection lost; later tries run as usual."""
    db: Any = cp._db
    real, tries = db._rowcount, []

    def flaky(query: str, args: Any) -> int:
        tries.append(query)
        if len(tries) == 1:
            fault(lambda: int(real(query, args)))
            lost = psycopg.OperationalError("server closed the connection unexpectedly")
            raise DatabaseUnavailable("PostgreSQL is unavailable: lost") from lost
        return int(real(query, args))

    db._rowcount = flaky


def test_an_append_that_committed_before_its_connection_was_lost_counts_once(
    cp: PostgresCheckpointer,
) -> None:
    run_id = start(cp)
    c = claim(cp, run_id)
    fail_first_append(cp, lambda statement: statement())  # committed, answer lost
    cp.append(run_id, c.token, [step(run_id, "1", 1)])
    assert [e.step_id for e in cp.journal(run_id)] == ["1"]


def test_an_append_retried_after_its_lease_moved_on_is_refused(
    cp: PostgresCheckpointer,
) -> None:
    run_id = start(cp)
    c = claim(cp, run_id, lease=0.01)

    def taken_over(statement: Callable[[], int]) -> None:  # never reached the server
        time.sleep(0.05)
        claim(cp, run_id, owner="w2")

    fail_first_append(cp, taken_over)
    with pytest.raises(LeaseLost):
        cp.append(run_id, c.token, [step(run_id, "1", 1)])
    assert cp.journal(run_id) == []


def test_a_shared_commit_that_landed_before_its_connection_was_lost_counts_once(
    cp: PostgresCheckpointer,
) -> None:
    runs = [start(cp) for _ in range(3)]
    tokens = {r: claim(cp, r).token for r in runs}
    db: Any = cp._db
    real, tries = db._answer, []

    def flaky(query: str, args: Any) -> list[Any]:
        tries.append(args)
        if len(tries) == 1:  # the shared statement committed; its answer did not arrive
            real(query, args)
            lost = psycopg.OperationalError("server closed the connection unexpectedly")
            raise DatabaseUnavailable("PostgreSQL is unavailable: lost") from lost
        return list(real(query, args))

    db._answer = flaky
    results = cp.append_many([Append(r, tokens[r], [step(r, "1", 1)]) for r in runs])
    assert results == [None, None, None] and len(tries) == 2
    assert [[e.step_id for e in cp.journal(r)] for r in runs] == [["1"], ["1"], ["1"]]
