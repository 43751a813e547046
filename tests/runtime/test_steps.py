"""Steps: journaled once, retried with every attempt recorded, checked for determinism."""

from __future__ import annotations

import gc
import json
import threading

import pytest

from tests.runtime import flows
from tests.runtime.flows import CALLS
from tether import RunStatus, Tether
from tether.errors import InvalidInput, RunNotFound, WorkflowNotFound
from tether.foundation.checkpoint.contract import EntryStatus


def test_workflow_runs_each_step_once_and_returns_its_output(tether: Tether) -> None:
    run_id = tether.start("steps", {"n": 4})
    CALLS.clear()
    run = tether.run(run_id)
    assert run.status is RunStatus.COMPLETED
    assert tether.output(run) == {"total": 6}
    assert [CALLS[f"step {i}"] for i in range(4)] == [1, 1, 1, 1]


def test_step_retries_with_backoff_and_records_every_attempt(tether: Tether) -> None:
    CALLS.clear()
    run_id = tether.start("flaky", {"key": "retry-me", "failures": 2, "attempts": 3})
    run = tether.run(run_id)
    assert run.status is RunStatus.COMPLETED
    assert CALLS["retry-me"] == 3
    journal = tether.journal(run_id)
    assert [e.status for e in journal] == [EntryStatus.ATTEMPT, EntryStatus.ATTEMPT, EntryStatus.OK]
    assert "attempt 1 of retry-me failed" in (journal[0].error or "")


def test_step_failing_every_attempt_fails_the_run_naming_the_step(tether: Tether) -> None:
    CALLS.clear()
    run_id = tether.start("flaky", {"key": "always", "failures": 99, "attempts": 2})
    run = tether.run(run_id)
    assert run.status is RunStatus.FAILED
    assert CALLS["always"] == 2
    error = json.loads(run.error or "{}")
    assert error["type"] == "ConnectionError" and "attempt 2" in error["message"]
    assert error["step"] == run.failed_step == "1"
    assert [e.status for e in tether.journal(run_id)] == [EntryStatus.ATTEMPT, EntryStatus.ERROR]


def test_non_retryable_error_fails_after_one_attempt(tether: Tether) -> None:
    run_id = tether.start("flaky", {"key": "fatal", "failures": 0, "fatal": True})
    run = tether.run(run_id)
    assert run.status is RunStatus.FAILED
    assert len(tether.journal(run_id)) == 1
    assert "retrying will not help" in (run.error or "")


def test_retry_resumes_failed_run_from_the_failed_step(tether: Tether) -> None:
    CALLS.clear()
    run_id = tether.start("flaky", {"key": "later", "failures": 2, "attempts": 2})
    assert tether.run(run_id).status is RunStatus.FAILED
    tether.retry(run_id)
    run = tether.run(run_id)
    assert run.status is RunStatus.COMPLETED
    assert CALLS["later"] == 3  # two failed attempts, then one more after the retry


def test_changed_step_name_on_replay_fails_the_run_naming_both(tether: Tether) -> None:
    # a nap long enough to outlast stopping the worker: on Temporal, a timer that fires while
    # the worker stops runs the workflow on (under load it completed before the rename)
    run_id = tether.start("drift", {"seconds": 1.0})
    stop = threading.Event()
    tether.run(run_id, stop=stop, on_wait=lambda _run: stop.set())
    assert tether.status(run_id).status is RunStatus.SLEEPING
    flows.DRIFT["first"] = "renamed"  # a deploy changed the workflow under a parked run
    try:
        run = tether.run(run_id)
    finally:
        flows.DRIFT["first"] = "before"
    assert run.status is RunStatus.FAILED
    error = json.loads(run.error or "{}")
    assert error["type"] == "NonDeterminismError"
    assert "before" in error["message"] and "renamed" in error["message"]


def test_idempotency_key_returns_the_same_run(tether: Tether) -> None:
    first = tether.start("steps", {"n": 1}, key="order-42")
    second = tether.start("steps", {"n": 1}, key="order-42")
    assert first == second
    assert len(tether.list()) == 1


def test_unknown_workflow_error_lists_the_known_ones(tether: Tether) -> None:
    with pytest.raises(WorkflowNotFound) as err:
        tether.start("no_such_flow", {})
    assert "no_such_flow" in str(err.value) and "steps" in str(err.value)


def test_invalid_input_names_the_field_and_starts_nothing(tether: Tether) -> None:
    with pytest.raises(InvalidInput) as err:
        tether.start("steps", {"n": "many"})
    assert "n" in str(err.value)
    assert tether.list() == []


def test_unknown_run_is_a_clear_error(tether: Tether) -> None:
    with pytest.raises(RunNotFound) as err:
        tether.status("nope")
    assert "nope" in str(err.value)


def test_unserialisable_step_result_fails_the_step_naming_its_type(tether: Tether) -> None:
    run = tether.run(tether.start("unserialisable", {}))
    assert run.status is RunStatus.FAILED
    assert "object" in (run.error or "")


def test_large_step_result_is_stored_once_as_a_blob(tether: Tether) -> None:
    size = 300 * 1024
    run = tether.run(tether.start("blob", {"size": size}))
    assert tether.output(run) == {"total": size}
    entry = tether.journal(run.id)[0]
    assert entry.value is not None and len(entry.value) < 200 and "$blob" in entry.value


def test_sync_step_that_runs_its_own_event_loop_works(tether: Tether) -> None:
    run = tether.run(tether.start("own_loop", {"n": 3}))
    assert run.status is RunStatus.COMPLETED, run.error
    assert tether.output(run) == {"total": 12}


def test_steps_made_from_fresh_closures_are_typed_and_not_kept_alive(tether: Tether) -> None:
    """A worker runs for weeks; a workflow that builds its step function anew each time (a
    lambda, a closure) must not leave every one of them cached."""
    run = tether.run(tether.start("closures", {"n": 6}))
    assert run.status is RunStatus.COMPLETED
    assert tether.output(run) == {"total": 15}
    gc.collect()
    assert len(flows.MADE) == 0
