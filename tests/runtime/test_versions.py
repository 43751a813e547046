"""Version upgrades: a run is pinned to name@version and never runs on code that did not
promise to take it over (`resumes=`); the rest stay parked and are listed as stranded."""

from __future__ import annotations

import json

from tests.runtime.flows import CALLS
from tether import RunStatus, Tether
from tether.foundation.checkpoint.contract import NewRun


def pinned(t: Tether, version: str) -> str:
    """A run started by an older deploy, pinned to a version this process no longer has."""
    run, _ = t.checkpointer.create_run(
        NewRun(
            id=f"old-{version}",
            workflow="upgrade",
            version=version,
            input=json.dumps({"seconds": 0}),
        )
    )
    return run.id


def test_new_version_resumes_the_older_runs_it_declares(tether: Tether) -> None:
    CALLS.clear()
    run_id = pinned(tether, "1.0.3")
    tether.worker(concurrency=1).run(until_idle=True)
    run = tether.status(run_id)
    assert run.status is RunStatus.COMPLETED
    assert run.workflow_id == "upgrade@1.0.3"  # still pinned; executed by 1.1.0's code
    assert tether.output(run) == {"total": 11} and CALLS["after (1.1)"] == 1


def test_run_of_a_version_no_code_resumes_stays_parked_and_is_listed_stranded(
    tether: Tether,
) -> None:
    stranded = pinned(tether, "0.9.0")
    resumable = pinned(tether, "1.0.0")
    tether.worker(concurrency=2).run(until_idle=True)
    assert tether.status(stranded).status is RunStatus.PENDING  # never ran on the wrong code
    assert tether.status(resumable).status is RunStatus.COMPLETED
    assert [r.id for r in tether.list(stranded=True)] == [stranded]
