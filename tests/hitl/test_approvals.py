"""I6 in agent code: `ctx.approval` parks the run on a durable wait, a decision wakes it, the
deadline is the run's own timer (reject, approve or escalate, audited), and an approval-gated
tool runs only with an approval bound to its exact arguments and spent on that one call."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.hitl.flows import CALLS
from tether import RunStatus, Tether
from tether.errors import DatabaseUnavailable
from tether.foundation.hitl.contract import (
    AlreadyDecided,
    ApprovalError,
    Approver,
    NotAnApprover,
    RequestState,
    UnknownApproval,
)
from tether.foundation.identity.contract import Identity
from tether.foundation.tools.runner import args_hash

OPS = Identity(subject="alice", roles=("ops",))
OPS2 = Identity(subject="bob", roles=("ops",))
MANAGER = Identity(subject="carol", roles=("managers",))
SALES = Identity(subject="mallory", roles=("sales",))


def _park(t: Tether, run_id: str) -> RunStatus:
    stop = threading.Event()
    t.run(run_id, stop=stop, on_wait=lambda _run: stop.set())
    return t.status(run_id).status


def _pending(t: Tether, run_id: str) -> str:
    (request,) = t.approvals(state="pending", run_id=run_id)
    return request.id


def test_an_approval_wakes_the_run_and_is_replayed_not_asked_again(
    hitl: Callable[..., Tether],
) -> None:
    CALLS.clear()
    t = hitl()
    run_id = t.start("deploy_gate", {"version": "2.0"})
    assert _park(t, run_id) is RunStatus.WAITING
    request = t.approval(_pending(t, run_id))
    assert request.action.name == "deploy" and request.action.args == {"version": "2.0"}
    assert request.approvers == ("role:ops",) and request.reason == "deploy 2.0"
    decision = t.decide(request.id, "approved", identity=OPS, reason="ship it")
    assert decision.by == "alice"
    out = t.output(t.run(run_id))
    assert out["verdict"] == "approved" and out["by"] == "alice" and not out["expired"]
    assert CALLS["prepare"] == 1 and CALLS["after"] == 1
    assert len(t.approvals(run_id=run_id)) == 1  # the resumed run did not ask again


def test_bad_decisions_change_nothing(hitl: Callable[..., Tether]) -> None:
    t = hitl()
    run_id = t.start("deploy_gate", {})
    _park(t, run_id)
    rid = _pending(t, run_id)
    with pytest.raises(UnknownApproval):
        t.decide("no-such-request", "approved", identity=OPS)
    with pytest.raises(NotAnApprover, match="mallory may not decide"):
        t.decide(rid, "approved", identity=SALES)
    assert t.approval(rid).state is RequestState.PENDING
    assert t.status(run_id).status is RunStatus.WAITING
    t.decide(rid, "rejected", identity=OPS, reason="not today")
    with pytest.raises(AlreadyDecided, match="rejected by alice"):
        t.decide(rid, "approved", identity=OPS2)
    out = t.output(t.run(run_id))
    assert out["verdict"] == "rejected"


def test_an_expiry_in_the_past_is_refused_before_anything_is_written(
    hitl: Callable[..., Tether],
) -> None:
    t = hitl()
    run_id = t.start("deploy_gate", {"expires_in": -1})
    run = t.run(run_id)
    assert run.status is RunStatus.FAILED
    assert "expires_in must be in the future" in (run.error or "")
    assert t.approvals(run_id=run_id) == []


def test_expiry_with_reject_takes_the_rejection_path(hitl: Callable[..., Tether]) -> None:
    t = hitl()
    run_id = t.start("deploy_gate", {"expires_in": 0.3, "on_expire": "reject"})
    out = t.output(t.run(run_id))  # the run's own timer fires: no one decides
    assert out["verdict"] == "rejected" and out["expired"] and out["by"] == "tether:expiry"
    (request,) = t.approvals(run_id=run_id)
    assert [h.event for h in request.history] == ["created", "expired:rejected"]
    expired = request.history[-1]
    assert expired.by == "tether:expiry" and expired.args_hash == request.action.args_hash
    assert request.deadline is not None and expired.at >= request.deadline


def test_expiry_with_escalate_reaches_the_second_group(hitl: Callable[..., Tether]) -> None:
    t = hitl()
    run_id = t.start(
        "deploy_gate",
        {"expires_in": 0.3, "on_expire": "escalate", "escalate_to": [["role:managers"]]},
    )
    _park(t, run_id)
    rid = _pending(t, run_id)
    escalated = threading.Event()  # the timer fires, the run escalates and parks again

    def until_escalated(_run: object) -> None:
        if t.approval(rid).round == 1 or time.time() > deadline:
            escalated.set()

    deadline = time.time() + 30
    t.run(run_id, stop=escalated, on_wait=until_escalated)
    request = t.approval(rid)
    assert request.round == 1 and request.approvers == ("role:managers",)
    escalated = request.history[-1]
    assert escalated.event == "escalated" and escalated.by == "tether:expiry"
    assert escalated.args_hash == request.action.args_hash and escalated.at <= request.deadline
    assert escalated.detail == {
        "from": ["role:ops"],
        "to": ["role:managers"],
        "deadline": request.deadline.isoformat() if request.deadline else None,
    }
    with pytest.raises(NotAnApprover):
        t.decide(rid, "approved", identity=OPS)
    t.decide(rid, "approved", identity=MANAGER)
    out = t.output(t.run(run_id))
    assert out["verdict"] == "approved" and out["by"] == "carol"


def test_an_approval_releases_only_its_own_arguments(
    hitl: Callable[..., Tether], tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox"
    t = hitl()
    run_id = t.start("gated_mail", {"outbox": str(outbox), "to": ["a@x.com", "b@x.com"]})
    _park(t, run_id)
    first = t.approval(_pending(t, run_id))
    assert first.action.name == "send_gated_mail" and first.action.args["to"] == "a@x.com"
    assert not outbox.exists()  # nothing runs before the decision
    t.decide(first.id, "approved", identity=OPS)
    _park(t, run_id)
    assert outbox.read_text() == "a@x.com\thello\n"
    second = t.approval(_pending(t, run_id))  # b's call asks again: a's approval is spent
    assert second.id != first.id and second.action.args["to"] == "b@x.com"
    assert second.action.args_hash != first.action.args_hash
    assert t.approval(first.id).consumed_by is not None
    t.decide(second.id, "rejected", identity=OPS, reason="not b")
    run = t.run(run_id)
    assert run.status is RunStatus.FAILED and "rejected by alice" in (run.error or "")
    assert outbox.read_text() == "a@x.com\thello\n"


def test_edit_and_approve_dispatches_the_edited_arguments(
    hitl: Callable[..., Tether], tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox"
    t = hitl()
    run_id = t.start("gated_mail", {"outbox": str(outbox), "to": ["a@x.com"], "body": "hi"})
    _park(t, run_id)
    request = t.approval(_pending(t, run_id))
    edited = {**request.action.args, "body": "hello, politely"}
    decision = t.decide(request.id, "edited", identity=OPS, args=edited)
    assert t.output(t.run(run_id)) == {"results": ["sent to a@x.com"]}
    assert outbox.read_text() == "a@x.com\thello, politely\n"
    stored = t.approval(request.id)
    assert stored.history[-2].detail["edited_from"] == request.action.args_hash
    assert stored.history[-1].event == "consumed"
    assert stored.history[-1].args_hash == decision.action.args_hash
    # the call's intent row spent the approval, and holds the edited arguments and their hash
    assert stored.consumed_by is not None
    row = t.foundations.tools.lookup(run_id, stored.consumed_by.split("/", 1)[1])
    assert row is not None and row.approval == request.id and row.args["body"] == edited["body"]
    assert row.args_hash == args_hash(edited)


def test_bad_approval_options_are_refused() -> None:
    from tether.runtime.approvals import check_options

    with pytest.raises(ApprovalError, match="needs approvers"):
        check_options([], None, "reject", [])
    with pytest.raises(ApprovalError, match="on_expire"):
        check_options(["a"], 1, "ignore", [])
    with pytest.raises(ApprovalError, match="escalate_to"):
        check_options(["a"], 1, "escalate", [])


def test_research_report_asks_an_editor_before_publishing(
    hitl: Callable[..., Tether], tmp_path: Path
) -> None:
    t = hitl(workflows=["workflows.research_report"])
    base = {"topic": "durable agents", "questions": 1, "review_pause_seconds": 0}
    quiet = t.start("research_report", base)
    assert t.run(quiet).status is RunStatus.COMPLETED
    assert t.approvals(run_id=quiet) == []  # no publish: nobody is asked
    editor = Identity(subject="ed", roles=("editor",))
    for verdict in ("approved", "rejected"):  # the rejected send must add nothing
        run_id = t.start("research_report", {**base, "publish": True})
        _park(t, run_id)
        request = t.approval(_pending(t, run_id))
        assert request.action.name == "send_report" and request.approvers == ("role:editor",)
        t.decide(request.id, verdict, identity=editor)
        assert t.run(run_id).status is RunStatus.COMPLETED
        (outbox,) = (tmp_path / ".tether").rglob("outbox.txt")
        assert len(outbox.read_text().splitlines()) == 1


def test_a_lost_wake_up_is_sent_again_by_the_next_attempt(hitl: Callable[..., Tether]) -> None:
    t = hitl()
    run_id = t.start("deploy_gate", {})
    _park(t, run_id)
    rid = _pending(t, run_id)
    # decided, then the process died before the run was woken
    t.foundations.hitl.decide(rid, "approved", Approver(subject="alice", roles=("ops",)))
    assert t.status(run_id).status is RunStatus.WAITING
    with pytest.raises(AlreadyDecided):
        t.decide(rid, "rejected", identity=OPS2)  # refused, but the winner's event goes out
    out = t.output(t.run(run_id))
    assert out["verdict"] == "approved" and out["by"] == "alice"


def test_a_policy_rule_demands_approval_for_matching_arguments_only(
    hitl: Callable[..., Tether], tmp_path: Path
) -> None:
    rules = tmp_path / "policy.yaml"
    rules.write_text(
        "rules:\n"
        "  - name: big-refunds-need-finance\n"
        "    effect: require_approval\n"
        "    reason: refunds of 1000 or more\n"
        '    approvers: ["role:finance"]\n'
        "    tool: refund\n"
        '    arguments: {amount: "^[0-9]{4,}$"}\n'
    )
    ledger = tmp_path / "ledger"
    t = hitl(policy={"rules": str(rules)})
    run_id = t.start("refunds", {"ledger": str(ledger), "amounts": [50, 5000]})
    assert _park(t, run_id) is RunStatus.WAITING
    assert ledger.read_text() == "c-1\t50\n"  # no match: it ran without asking anyone
    request = t.approval(_pending(t, run_id))  # the match waits, undispatched
    assert request.action.name == "refund" and request.action.args["amount"] == 5000
    assert request.approvers == ("role:finance",) and request.reason == "refunds of 1000 or more"
    with pytest.raises(NotAnApprover):
        t.decide(request.id, "approved", identity=OPS)
    t.decide(request.id, "approved", identity=Identity(subject="fay", roles=("finance",)))
    out = t.output(t.run(run_id))
    assert out == {"results": ["refunded 50 to c-1", "refunded 5000 to c-1"]}
    assert ledger.read_text() == "c-1\t50\nc-1\t5000\n"
    assert len(t.approvals(run_id=run_id)) == 1
    audit = [(r.rule, r.outcome, r.reason) for r in t.foundations.guards.audit.query(run_id=run_id)]
    assert [a[:2] for a in audit] == [("default", "allow"), ("big-refunds-need-finance", "allow")]
    assert f"released by approval {request.id}" in audit[1][2]


def test_a_policy_rule_demanding_approval_that_is_rejected_runs_nothing(
    hitl: Callable[..., Tether], tmp_path: Path
) -> None:
    rules = tmp_path / "policy.yaml"
    rules.write_text(
        "rules:\n"
        "  - {name: refunds, effect: require_approval, approvers: [role:finance], tool: refund}\n"
    )
    ledger = tmp_path / "ledger"
    t = hitl(policy={"rules": str(rules)})
    run_id = t.start("refunds", {"ledger": str(ledger), "amounts": [50]})
    _park(t, run_id)
    t.decide(_pending(t, run_id), "rejected", identity=Identity(subject="fay", roles=("finance",)))
    run = t.run(run_id)
    assert run.status is RunStatus.FAILED and "rejected by fay" in (run.error or "")
    assert not ledger.exists()


def test_a_run_parked_on_a_policy_approval_resumes_the_same_way_after_the_rules_change(
    hitl: Callable[..., Tether], tmp_path: Path
) -> None:
    rules = tmp_path / "policy.yaml"
    rules.write_text(
        "rules:\n"
        "  - {name: refunds, effect: require_approval, approvers: [role:finance], tool: refund}\n"
    )
    ledger = tmp_path / "ledger"
    asking = hitl(policy={"rules": str(rules)})
    run_id = asking.start("refunds", {"ledger": str(ledger), "amounts": [70]})
    _park(asking, run_id)
    rid = _pending(asking, run_id)
    relaxed = hitl()  # the rule is gone by the time the decision comes
    relaxed.decide(rid, "approved", identity=Identity(subject="fay", roles=("finance",)))
    run = relaxed.run(run_id)
    assert run.status is RunStatus.COMPLETED, run.error  # the journal's path, not a new one
    assert ledger.read_text() == "c-1\t70\n"
    assert relaxed.approval(rid).consumed_by is not None


def test_a_consumption_i6_missed_reaches_it_on_a_later_pass(
    hitl: Callable[..., Tether], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outbox = tmp_path / "outbox"
    t = hitl()
    run_id = t.start("gated_mail", {"outbox": str(outbox), "to": ["a@x.com", "b@x.com"]})
    _park(t, run_id)
    first = _pending(t, run_id)
    t.decide(first, "approved", identity=OPS)
    broker = t.foundations.hitl

    def unreachable(*args: object) -> None:
        raise DatabaseUnavailable("hitl database is down")

    monkeypatch.setattr(broker, "consume", unreachable)  # I6 goes down after the decision
    _park(t, run_id)  # a's call runs (its intent row spends the approval), then b's asks
    assert outbox.read_text() == "a@x.com\thello\n"
    assert t.approval(first).consumed_by is None  # I6 missed it; the row did not
    monkeypatch.undo()
    t.decide(_pending(t, run_id), "approved", identity=OPS)
    assert t.run(run_id).status is RunStatus.COMPLETED  # its replay of a's call tells I6
    assert outbox.read_text() == "a@x.com\thello\nb@x.com\thello\n"
    assert t.approval(first).consumed_by is not None
    assert [h.event for h in t.approval(first).history].count("consumed") == 1
