"""support_triage asks a support lead before paging on-call (ctx.approval, I6): left
unanswered the request escalates to the incident managers, and left unanswered again it
expires into a rejection that sends the ticket to the escalations queue unpaged. Each step is
in the request's history with who, when and the hash of the arguments it was about."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tether import RunStatus, Tether
from tether.foundation.hitl.contract import EXPIRY_SUBJECT, ApprovalRequest, NotAnApprover
from tether.foundation.identity.contract import Identity

LEAD = Identity(subject="lena", roles=("support-leads",))
MANAGER = Identity(subject="max", roles=("incident-managers",))
OUTAGE = {"ticket_id": "T-4", "text": "The whole site is down, every page returns 500 errors"}


@pytest.fixture
def triage(make_tether: Callable[..., Tether]) -> Tether:
    return make_tether(workflows=["workflows.support_triage"])


def park(t: Tether, run_id: str) -> None:
    stop = threading.Event()
    t.run(run_id, stop=stop, on_wait=lambda _run: stop.set())


def the_request(t: Tether, run_id: str) -> ApprovalRequest:
    (request,) = t.approvals(run_id=run_id)
    return request


def pages(data_dir: Path) -> list[Path]:
    return sorted(data_dir.rglob("tether-*.json"))


def test_a_lead_approves_the_exact_page_before_anyone_is_paged(
    triage: Tether, tmp_path: Path
) -> None:
    run_id = triage.start("support_triage", OUTAGE)
    park(triage, run_id)
    request = the_request(triage, run_id)
    assert request.action.name == "page_oncall"
    assert request.action.args == {"ticket_id": "T-4", "queue": "incident"}
    assert request.approvers == ("role:support-leads",) and not pages(tmp_path)
    triage.decide(request.id, "approved", identity=LEAD, reason="real outage")
    out = triage.output(triage.run(run_id))
    assert out["paged"] and out["queue"] == "incident" and out["decided_by"] == "lena"
    assert len(pages(tmp_path)) == 1


def test_a_lead_who_rejects_keeps_the_pager_quiet(triage: Tether, tmp_path: Path) -> None:
    run_id = triage.start("support_triage", OUTAGE)
    park(triage, run_id)
    triage.decide(the_request(triage, run_id).id, "rejected", identity=LEAD, reason="known")
    out = triage.output(triage.run(run_id))
    assert not out["paged"] and out["queue"] == "incident" and out["decided_by"] == "lena"
    assert not pages(tmp_path)


def test_expiry_with_escalate_reaches_the_incident_managers(triage: Tether, tmp_path: Path) -> None:
    run_id = triage.start("support_triage", {**OUTAGE, "approval_timeout_seconds": 0.3})
    park(triage, run_id)
    deadline = time.time() + 10
    while the_request(triage, run_id).round == 0 and time.time() < deadline:
        park(triage, run_id)  # the run's own timer fires; it escalates and parks again
    request = the_request(triage, run_id)
    assert request.round == 1 and request.approvers == ("role:incident-managers",)
    created, escalated = request.history
    assert escalated.event == "escalated" and escalated.by == EXPIRY_SUBJECT
    assert created.at < escalated.at and escalated.args_hash == request.action.args_hash
    assert escalated.detail["from"] == ["role:support-leads"]
    assert escalated.detail["to"] == ["role:incident-managers"]
    with pytest.raises(NotAnApprover):  # the leads had their turn
        triage.decide(request.id, "approved", identity=LEAD)
    triage.decide(request.id, "approved", identity=MANAGER)
    out = triage.output(triage.run(run_id))
    assert out["paged"] and out["decided_by"] == "max" and len(pages(tmp_path)) == 1


def test_expiry_after_the_last_group_takes_the_rejection_path(
    triage: Tether, tmp_path: Path
) -> None:
    run = triage.run(triage.start("support_triage", {**OUTAGE, "approval_timeout_seconds": 0.2}))
    assert run.status is RunStatus.COMPLETED
    out = triage.output(run)
    assert not out["paged"] and out["queue"] == "escalations"
    assert out["decided_by"] == EXPIRY_SUBJECT and out["emailed"]
    request = the_request(triage, run.id)
    assert [h.event for h in request.history] == ["created", "escalated", "expired:rejected"]
    assert all(h.by and h.at and h.args_hash == request.action.args_hash for h in request.history)
    assert request.decision is not None and request.decision.expired
    assert not pages(tmp_path)
