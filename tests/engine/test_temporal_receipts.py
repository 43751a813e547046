"""The receipts on the temporal engine: kill -9 a worker mid-run and the run resumes without
redoing a finished step; an unsafe email interrupted by a killed worker is sent once and the
run waits for a person; a run parked by one deploy is resumed by the next, which declares
`resumes=`, with no edit to agent code; the reference workflows give the same output as on
the local engine."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.hitl.test_support_triage import LEAD, OUTAGE, park, the_request
from tests.receipts.test_tool_receipts import sent
from tests.runtime.test_crash_resume import kill_mid_run_and_resume
from tests.workers import kill_worker_when, run_worker_until
from tether import RunStatus, Tether

pytestmark = [pytest.mark.temporal, pytest.mark.slow]


@pytest.fixture
def on_temporal(temporal_server: str) -> dict[str, Any]:
    """Settings (and the same as environment, for worker processes) of a temporal engine
    with task queues of this test's own."""
    return {
        "engine": "temporal",
        "temporal_address": temporal_server,
        "temporal_queue_prefix": f"t{uuid.uuid4().hex[:12]}",
    }


def _env(options: dict[str, Any], **extra: str) -> dict[str, str]:
    return {f"TETHER_{k.upper()}": str(v) for k, v in options.items()} | extra


def test_kill_minus_9_mid_run_resumes_without_redoing_steps_on_temporal(
    make_tether: Callable[..., Tether], on_temporal: dict[str, Any], tmp_path: Path
) -> None:
    t = make_tether("sqlite", **on_temporal)
    kill_mid_run_and_resume(t, tmp_path / ".tether", tmp_path / "effects.log", _env(on_temporal))


def test_send_email_fires_once_after_kill_and_resume_on_temporal(
    make_tether: Callable[..., Tether], on_temporal: dict[str, Any], tmp_path: Path
) -> None:
    t = make_tether("sqlite", workflows=["tests.receipts.agents"], **on_temporal)
    outbox = tmp_path / "outbox.txt"
    run_id = t.start("mailer", {"outbox": str(outbox), "then_wait": 30})
    env = _env(on_temporal, TETHER_WORKFLOWS=json.dumps(["tests.receipts.agents"]))
    kill_worker_when(tmp_path / ".tether", lambda: len(sent(outbox)) == 1, env)
    run_worker_until(
        tmp_path / ".tether", lambda: t.status(run_id).status is RunStatus.NEEDS_ATTENTION, env
    )
    run = t.status(run_id)
    assert run.failed_step == "1" and "UnsafeReplayError" in (run.error or "")
    assert len(sent(outbox)) == 1  # Temporal re-delivered the activity; I1 refused to resend
    t.resolve(run_id, "1", result="sent to ana@example.com (confirmed by hand)")
    done = t.run(run_id)
    assert done.status is RunStatus.COMPLETED
    assert t.output(done) == {"result": "sent to ana@example.com (confirmed by hand)"}
    assert len(sent(outbox)) == 1


def test_a_parked_run_survives_a_deploy_and_the_new_version_resumes_it(
    make_tether: Callable[..., Tether], on_temporal: dict[str, Any], tmp_path: Path
) -> None:
    t = make_tether("sqlite", workflows=["tests.engine.deploy_v1"], **on_temporal)
    run_id = t.start("greeter@1.0.0", {"who": "ana"})
    first = _env(on_temporal, TETHER_WORKFLOWS=json.dumps(["tests.engine.deploy_v1"]))
    run_worker_until(
        tmp_path / ".tether", lambda: t.status(run_id).status is RunStatus.WAITING, first
    )  # the first deploy's workers are gone; the run holds no worker while it waits
    t.send_event("greet", {"who": "ana"})
    second = _env(on_temporal, TETHER_WORKFLOWS=json.dumps(["tests.engine.deploy_v2"]))
    run_worker_until(
        tmp_path / ".tether", lambda: t.status(run_id).status is RunStatus.COMPLETED, second
    )
    run = t.status(run_id)
    assert run.workflow_id == "greeter@1.0.0"  # still pinned, run by the version that resumes it
    assert t.output(run) == {"text": "hello ana, from 1.1.0"}


REFERENCE = ["workflows.research_report", "workflows.support_triage"]


def _reference_outputs(t: Tether) -> list[Any]:
    report = t.run(t.start("research_report", {"topic": "leases", "review_pause_seconds": 0}))
    # an outage: the run asks a support lead (ctx.approval, I6) before paging on-call, and
    # the lead decides through I6 while it is parked, as in tests/hitl/test_support_triage.py
    triage = t.start("support_triage", OUTAGE)
    park(t, triage)
    request = the_request(t, triage)
    assert request.action.args == {"ticket_id": "T-4", "queue": "incident"}
    t.decide(request.id, "approved", identity=LEAD, reason="real outage")
    done = t.run(triage)
    assert report.status is RunStatus.COMPLETED and done.status is RunStatus.COMPLETED
    output = t.output(report)
    # the report's file is named for its run: compare what was saved, not where
    output["saved_to"] = Path(output["saved_to"]).read_text()
    return [output, t.output(done)]


def test_reference_workflows_give_the_same_output_on_local_and_temporal(
    make_tether: Callable[..., Tether],
    on_temporal: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    local = make_tether("sqlite", workflows=REFERENCE)
    expected = _reference_outputs(local)
    elsewhere = tmp_path_factory.mktemp("temporal") / ".tether"
    temporal = make_tether("sqlite", workflows=REFERENCE, data_dir=elsewhere, **on_temporal)
    assert _reference_outputs(temporal) == expected
    assert expected[1]["paged"] and expected[1]["decided_by"] == "lena"  # the outage path
