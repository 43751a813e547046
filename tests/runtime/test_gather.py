"""gather: fan-out/fan-in whose branches keep their ids however they interleave."""

from __future__ import annotations

import threading

from tests.runtime import flows
from tests.runtime.flows import CALLS
from tether import RunStatus, Tether


def test_gather_of_50_branches_with_one_failing_attempt_retried(tether: Tether) -> None:
    CALLS.clear()
    run = tether.run(tether.start("fan", {"n": 50, "flaky_branch": 17, "key": "branch-17"}))
    assert run.status is RunStatus.COMPLETED
    assert tether.output(run) == {"total": sum(2 * i for i in range(50))}
    assert CALLS["branch-17"] == 2  # one failed attempt, one success
    assert all(CALLS[f"fetch {i}"] == CALLS[f"parse {i}"] == 1 for i in range(50))
    journal = tether.journal(run.id)
    ids = {e.step_id for e in journal}
    assert len(ids) == 50 * 2 + 1  # fetch + parse per branch, plus the flaky step


def test_branch_ids_are_stable_when_delays_reverse_on_resume(tether: Tether) -> None:
    """Stop a fan-out midway, then resume it with every branch's delays reversed: each
    branch's steps are found at the ids they were journaled under, so none runs twice."""
    CALLS.clear()
    stop = threading.Event()
    flows.STOP_AFTER.update(steps=7, event=stop)
    run_id = tether.start("fan", {"n": 8})
    try:
        assert tether.run(run_id, stop=stop).status is not RunStatus.COMPLETED
    finally:
        flows.STOP_AFTER.clear()
    done_before = {e.name for e in tether.journal(run_id)}
    assert 0 < len(done_before) < 16
    flows.FAN["reverse"] = True
    try:
        run = tether.run(run_id)
    finally:
        flows.FAN["reverse"] = False
    assert run.status is RunStatus.COMPLETED
    assert tether.output(run) == {"total": sum(2 * i for i in range(8))}
    assert {label: n for label, n in CALLS.items() if n != 1} == {}  # every step ran once
    assert len(CALLS) == 16


def test_gather_with_sleeping_branches_parks_once_and_resumes(tether: Tether) -> None:
    run_id = tether.start("parent", {"seconds": 0.05})
    stop = threading.Event()
    tether.run(run_id, stop=stop)
    assert tether.run(run_id).status is RunStatus.COMPLETED


def test_gather_of_50_with_one_failed_branch_retried_reruns_only_that_branch(
    tether: Tether,
) -> None:
    CALLS.clear()
    run_id = tether.start("fan", {"n": 50, "flaky_branch": 17, "flaky_failures": 2, "key": "b17"})
    failed = tether.run(run_id)
    assert failed.status is RunStatus.FAILED and CALLS["b17"] == 2  # both attempts failed
    before = {label: n for label, n in CALLS.items() if label != "b17"}
    tether.retry(run_id)
    run = tether.run(run_id)
    assert run.status is RunStatus.COMPLETED
    assert tether.output(run) == {"total": sum(2 * i for i in range(50))}
    assert CALLS["b17"] == 3  # only the failed step ran again
    assert {label: n for label, n in CALLS.items() if label != "b17"} == {
        **before,
        "parse 17": 1,  # branch 17's next step, which never ran before the failure
    }
    assert all(n == 1 for label, n in CALLS.items() if label != "b17")
