"""I6 contract: every broker binds a request to its action, refuses a decision by a
non-approver or on a decided request (two concurrent decisions: exactly one wins, the other is
told who won), takes the on_expire path once per round, and spends an approval on one call.

PostgreSQL runs against the server at 127.0.0.1:5432, each test in its own schema; it is
skipped, saying why, only when that server is unreachable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.contract.backends import handles, installed
from tether.foundation.hitl.contract import (
    EXPIRY_SUBJECT,
    Action,
    AlreadyDecided,
    ApprovalError,
    ApprovalMismatch,
    ApprovalRequest,
    Approver,
    HITLBroker,
    NotAnApprover,
    OnExpire,
    RequestState,
    UnknownApproval,
    Verdict,
    now,
)

ALICE = Approver(subject="alice", roles=("ops",))
BOB = Approver(subject="bob", roles=("ops",))
MALLORY = Approver(subject="mallory", roles=("sales",))


@pytest.fixture(params=installed("hitl"))
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], HITLBroker]]:
    with handles("hitl", request.param, HITLBroker, "hitl", tmp_path) as open_again:
        yield open_again


@pytest.fixture
def broker(opener: Callable[[], HITLBroker]) -> HITLBroker:
    return opener()


def _request(rid: str = "r1", *, to: str = "a@example.com", **fields: object) -> ApprovalRequest:
    base: dict[str, object] = {
        "id": rid,
        "run_id": "run-1",
        "step_id": "3",
        "action": Action.of("send_email", {"to": to, "body": "hi"}),
        "approvers": ("role:ops",),
        "reason": "mail a customer",
    }
    base.update(fields)
    return ApprovalRequest.model_validate(base)


def test_create_is_idempotent_and_bound_to_the_action(broker: HITLBroker) -> None:
    first = broker.create(_request())
    assert first.state is RequestState.PENDING and first.created_at is not None
    assert broker.create(_request()) == first  # a replay gets the stored request
    with pytest.raises(ApprovalMismatch):
        broker.create(_request(to="b@example.com"))
    assert broker.get("r1") == first
    assert [r.id for r in broker.list(state=RequestState.PENDING)] == ["r1"]
    assert broker.list(run_id="run-other") == []


def test_the_hash_is_canonical() -> None:
    a = Action.of("t", {"x": 1, "y": {"b": 2, "a": 1}})
    b = Action.of("t", {"y": {"a": 1, "b": 2}, "x": 1})
    assert a.args_hash == b.args_hash != Action.of("t", {"x": 2}).args_hash


def test_approve_records_who_when_why(broker: HITLBroker) -> None:
    broker.create(_request())
    d = broker.decide("r1", Verdict.APPROVED, ALICE, reason="looks right")
    assert d.approved and d.by == "alice" and d.reason == "looks right"
    stored = broker.get("r1")
    assert stored.state is RequestState.APPROVED and stored.decision == d
    assert [h.event for h in stored.history] == ["created", "approved"]
    assert stored.history[-1].by == "alice"


def test_edit_and_approve_binds_the_edited_arguments(broker: HITLBroker) -> None:
    original = broker.create(_request())
    d = broker.decide("r1", Verdict.EDITED, ALICE, args={"to": "a@example.com", "body": "hello"})
    assert d.approved and d.action.args == {"to": "a@example.com", "body": "hello"}
    assert d.action.args_hash != original.action.args_hash
    entry = broker.get("r1").history[-1]
    assert entry.event == "edited" and entry.detail["edited_from"] == original.action.args_hash
    assert entry.args_hash == d.action.args_hash


def test_bad_decisions_are_refused_and_change_nothing(broker: HITLBroker) -> None:
    with pytest.raises(UnknownApproval):
        broker.decide("nope", Verdict.APPROVED, ALICE)
    before = broker.create(_request())
    with pytest.raises(NotAnApprover):
        broker.decide("r1", Verdict.APPROVED, MALLORY)
    with pytest.raises(ApprovalError, match="edited arguments are given with an 'edited'"):
        broker.decide("r1", Verdict.EDITED, ALICE)  # edited, but no arguments
    with pytest.raises(ApprovalError, match="edited arguments are given with an 'edited'"):
        broker.decide("r1", Verdict.APPROVED, ALICE, args={"to": "b@example.com"})
    assert broker.get("r1") == before
    broker.decide("r1", Verdict.REJECTED, ALICE, reason="no")
    decided = broker.get("r1")
    with pytest.raises(AlreadyDecided) as e:
        broker.decide("r1", Verdict.APPROVED, BOB)
    assert e.value.winner is not None and e.value.winner.by == "alice"
    assert "rejected by alice" in str(e.value)
    assert broker.get("r1") == decided


def test_a_deadline_in_the_past_is_refused(broker: HITLBroker) -> None:
    with pytest.raises(ApprovalError, match="has passed"):
        broker.create(_request(deadline=now() - timedelta(seconds=1)))
    with pytest.raises(UnknownApproval):
        broker.get("r1")


def _race(opener: Callable[[], HITLBroker], rid: str) -> list[object]:
    """Alice approves and Bob rejects, each through a handle of their own, at once."""
    outcomes: list[object] = []
    barrier = threading.Barrier(2)

    def decide(who: Approver, verdict: Verdict) -> None:
        handle = opener()
        barrier.wait()
        try:
            outcomes.append(handle.decide(rid, verdict, who))
        except AlreadyDecided as e:
            outcomes.append(e)

    threads = [
        threading.Thread(target=decide, args=(ALICE, Verdict.APPROVED)),
        threading.Thread(target=decide, args=(BOB, Verdict.REJECTED)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def test_concurrent_decisions_one_wins(opener: Callable[[], HITLBroker]) -> None:
    for i in range(5):
        opener().create(_request(f"race-{i}"))
        outcomes = _race(opener, f"race-{i}")
        lost = [o for o in outcomes if isinstance(o, AlreadyDecided)]
        won = [o for o in outcomes if not isinstance(o, AlreadyDecided)]
        assert len(won) == 1 and len(lost) == 1
        stored = opener().get(f"race-{i}")
        assert stored.decision == won[0]
        assert lost[0].winner == won[0]
        assert [h.event for h in stored.history] == ["created", stored.state.value]


def test_expiry_rejects_or_approves_once(broker: HITLBroker) -> None:
    broker.create(_request("rej", deadline=now() + timedelta(seconds=0.2)))
    broker.create(_request("ok", deadline=now() + timedelta(seconds=0.2), on_expire="approve"))
    assert broker.expire("rej", 0).state is RequestState.PENDING  # not yet
    time.sleep(0.25)
    rejected = broker.expire("rej", 0)
    assert rejected.state is RequestState.REJECTED and rejected.decision is not None
    assert rejected.decision.expired and rejected.decision.by == EXPIRY_SUBJECT
    assert broker.expire("rej", 0) == rejected  # once
    assert broker.expire("ok", 0).state is RequestState.APPROVED
    assert rejected.history[-1].event == "expired:rejected"


def test_escalation_reassigns_to_the_next_group(broker: HITLBroker) -> None:
    broker.create(
        _request(
            deadline=now() + timedelta(seconds=0.2),
            on_expire=OnExpire.ESCALATE,
            escalate_to=(("role:managers",),),
            expires_in=0.2,
        )
    )
    time.sleep(0.25)
    escalated = broker.expire("r1", 0)
    assert escalated.state is RequestState.PENDING and escalated.round == 1
    assert escalated.approvers == ("role:managers",)
    assert escalated.history[-1].event == "escalated"
    assert escalated.history[-1].detail["to"] == ["role:managers"]
    with pytest.raises(NotAnApprover):  # the first group no longer decides
        broker.decide("r1", Verdict.APPROVED, ALICE)
    assert broker.expire("r1", 0) == escalated  # that round is over
    time.sleep(0.25)
    final = broker.expire("r1", 1)  # no group left: rejected
    assert final.state is RequestState.REJECTED


def test_an_approval_is_spent_on_one_call(broker: HITLBroker) -> None:
    request = broker.create(_request())
    h = request.action.args_hash
    with pytest.raises(ApprovalMismatch):  # not approved yet
        broker.consume("r1", "run-1", "3", h)
    broker.decide("r1", Verdict.APPROVED, ALICE)
    approved = broker.get("r1")
    other = Action.of("send_email", {"to": "b@example.com", "body": "hi"}).args_hash
    with pytest.raises(ApprovalMismatch, match="ask again for these arguments"):
        broker.consume("r1", "run-1", "3", other)  # arguments that no longer match
    assert broker.get("r1") == approved
    d = broker.consume("r1", "run-1", "3", h)
    assert broker.consume("r1", "run-1", "3", h) == d  # a replay of the same call
    with pytest.raises(ApprovalMismatch, match="already released"):
        broker.consume("r1", "run-1", "4", h)
    assert [e.event for e in broker.get("r1").history].count("consumed") == 1


def test_a_rejection_releases_nothing(broker: HITLBroker) -> None:
    request = broker.create(_request())
    broker.decide("r1", Verdict.REJECTED, ALICE)
    with pytest.raises(ApprovalMismatch):
        broker.consume("r1", "run-1", "3", request.action.args_hash)
