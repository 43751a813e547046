"""I6 HITLBroker contract: a person's approval of one action, recorded and consumed once.

An `ApprovalRequest` is bound to one action, the tool (or action) name plus a canonical hash of
its arguments, and to the call it releases: (run id, step id). The run id is a plain value, no
foreign key into I2, so I6 can live in a database of its own. A decision (approved, rejected,
edited: approved with other arguments) is recorded with who (an I8 identity), when and why; a
decision by someone who is not an approver is refused, and a second decision on a decided request
is refused atomically: of two concurrent decisions exactly one wins, the other is told who won.

Expiry and escalation are driven by the run that asked (a durable timer it owns): when its
deadline passes it calls `expire` for the round it waited on, and the request takes its
`on_expire` path: rejected, approved, or reassigned to the next group of its escalation chain
with a new deadline. Every step is kept in the request's history.

Every backend implements `Broker`'s four storage primitives (a versioned JSON document per
request, swapped only if its version is unchanged) and inherits the rules, so memory, SQLite and
PostgreSQL decide alike.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from tether.errors import TetherError

if TYPE_CHECKING:
    from tether.settings import Settings

APPROVAL_EVENT = "tether.approval"  # the event that wakes a run parked on a request
EXPIRY_SUBJECT = "tether:expiry"  # who decides when a deadline passes


def args_hash(args: dict[str, Any]) -> str:
    """The canonical hash of an action's arguments: sorted keys, no whitespace, UTF-8."""
    text = json.dumps(args, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


class Action(BaseModel):
    """What is to be approved: a tool (or named action) and its exact arguments."""

    model_config = ConfigDict(frozen=True)

    name: str
    args: dict[str, Any] = Field(default_factory=dict)
    args_hash: str = ""

    @classmethod
    def of(cls, name: str, args: dict[str, Any] | None = None) -> Action:
        args = dict(args or {})
        return cls(name=name, args=args, args_hash=args_hash(args))


class OnExpire(StrEnum):
    REJECT = "reject"
    APPROVE = "approve"
    ESCALATE = "escalate"


class Verdict(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"
    EDITED = "edited"  # approved with the arguments the approver gave


class RequestState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EDITED = "edited"


class Approver(BaseModel):
    """Who decides: an I8 identity's subject and roles."""

    model_config = ConfigDict(frozen=True)

    subject: str
    roles: tuple[str, ...] = ()

    def may_decide(self, approvers: Sequence[str]) -> bool:
        """`approvers` names identities (`alice`, `user:alice`) or roles (`role:oncall`)."""
        for who in approvers:
            kind, _, name = who.partition(":")
            if kind == "role" and name in self.roles:
                return True
            if who == self.subject or (kind == "user" and name == self.subject):
                return True
        return False


class Decision(BaseModel):
    """A request's outcome: what was decided, by whom, when, why, and the bound arguments."""

    model_config = ConfigDict(frozen=True)

    request_id: str
    verdict: Verdict
    by: str
    at: datetime
    reason: str | None = None
    action: Action  # the arguments released: the edited ones after edit-and-approve
    expired: bool = False  # decided by the request's on_expire path

    @property
    def approved(self) -> bool:
        return self.verdict is not Verdict.REJECTED


class HistoryEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: datetime
    event: str  # created, approved, rejected, edited, expired, escalated, consumed
    by: str
    reason: str | None = None
    args_hash: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class ApprovalRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    run_id: str
    step_id: str
    action: Action
    approvers: tuple[str, ...]
    deadline: datetime | None = None
    on_expire: OnExpire = OnExpire.REJECT
    escalate_to: tuple[tuple[str, ...], ...] = ()  # the next groups, in order
    expires_in: float | None = None  # each escalation's new deadline is this far on
    reason: str | None = None
    requested_by: str | None = None
    round: int = 0  # how many times it has escalated
    state: RequestState = RequestState.PENDING
    decision: Decision | None = None
    consumed_by: str | None = None  # "run_id/step_id" of the call it released
    created_at: datetime | None = None
    history: tuple[HistoryEntry, ...] = ()


class ApprovalError(TetherError):
    """A decision or request I6 refuses; nothing was changed."""


class UnknownApproval(ApprovalError):
    def __init__(self, request_id: str) -> None:
        super().__init__(f"no approval request {request_id!r}; `tether approvals list` lists them")
        self.request_id = request_id


class AlreadyDecided(ApprovalError):
    def __init__(self, request: ApprovalRequest) -> None:
        d = request.decision
        who = f"{d.verdict.value} by {d.by} at {d.at.isoformat()}" if d else request.state.value
        super().__init__(f"approval request {request.id!r} is already decided: {who}")
        self.request = request
        self.winner = d


class NotAnApprover(ApprovalError):
    def __init__(self, request: ApprovalRequest, who: Approver) -> None:
        super().__init__(
            f"{who.subject} may not decide approval request {request.id!r}; its approvers are "
            f"{', '.join(request.approvers)}"
        )


class ApprovalMismatch(ApprovalError):
    """The approval is for another action, or already released another call."""


class CallbackRefused(ApprovalError):
    """A transport's callback that is not genuine (signature, timestamp) or not for us
    (another workspace, an unmapped user); nothing was decided."""

    def __init__(self, message: str, *, forged: bool) -> None:
        super().__init__(message)
        self.forged = forged


def now() -> datetime:
    return datetime.now(UTC)


@runtime_checkable
class HITLBroker(Protocol):
    """Where approval requests and their decisions live; each method one atomic change."""

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> Self: ...

    def create(self, request: ApprovalRequest) -> ApprovalRequest:
        """Store a new pending request, or return the one stored under its id (a replay);
        the same id for another action is an ApprovalMismatch. A deadline in the past is
        refused."""
        ...

    def get(self, request_id: str) -> ApprovalRequest: ...

    def list(
        self, *, state: RequestState | None = None, run_id: str | None = None
    ) -> list[ApprovalRequest]: ...

    def decide(
        self,
        request_id: str,
        verdict: Verdict,
        by: Approver,
        *,
        reason: str | None = None,
        args: dict[str, Any] | None = None,
    ) -> Decision:
        """Decide a pending request; `args` are the edited arguments of an EDITED verdict."""
        ...

    def expire(self, request_id: str, round: int) -> ApprovalRequest:
        """Take the on_expire path of a request still pending in `round` whose deadline has
        passed; otherwise return it unchanged (decided meanwhile, or this round already
        expired)."""
        ...

    def consume(self, request_id: str, run_id: str, step_id: str, args_hash: str) -> Decision:
        """Record that an approving decision was spent on the call (run_id, step_id) with these
        arguments. The call's intent row in I1 is where it is spent (and the source of truth);
        this mirrors it, so it is idempotent: the same call again gets it again, any other
        call is an ApprovalMismatch."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class ApprovalTransport(Protocol):
    """How a request reaches its approvers beyond the local CLI and web UI (D1: slack,
    webhook)."""

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> Self: ...

    def notify(self, request: ApprovalRequest) -> None:
        """Tell the approvers a request waits (post a message with its buttons)."""
        ...

    def close(self) -> None: ...


class Broker:
    """The rules of I6 over a backend's `RequestStore` primitives."""

    def _load(self, request_id: str) -> tuple[str, int] | None:
        raise NotImplementedError

    def _insert(self, request: ApprovalRequest, doc: str) -> bool:
        raise NotImplementedError

    def _swap(self, request: ApprovalRequest, doc: str, version: int) -> bool:
        raise NotImplementedError

    def _select(self, state: str | None, run_id: str | None) -> list[str]:
        raise NotImplementedError

    def _read(self, request_id: str) -> tuple[ApprovalRequest, int]:
        found = self._load(request_id)
        if found is None:
            raise UnknownApproval(request_id)
        return ApprovalRequest.model_validate_json(found[0]), found[1]

    def create(self, request: ApprovalRequest) -> ApprovalRequest:
        at = now()
        if request.deadline is not None and request.deadline <= at:
            raise ApprovalError(
                f"approval request {request.id!r} expires at {request.deadline.isoformat()}, "
                "which has passed; give a deadline in the future"
            )
        if not request.approvers:
            raise ApprovalError(f"approval request {request.id!r} names no approvers")
        stored = request.model_copy(
            update={
                "created_at": at,
                "state": RequestState.PENDING,
                "history": (
                    HistoryEntry(
                        at=at,
                        event="created",
                        by=request.requested_by or request.run_id,
                        reason=request.reason,
                        args_hash=request.action.args_hash,
                        detail={"approvers": list(request.approvers)},
                    ),
                ),
            }
        )
        if self._insert(stored, stored.model_dump_json()):
            return stored
        existing, _ = self._read(request.id)
        if existing.action.name != request.action.name or (
            existing.action.args_hash != request.action.args_hash
        ):
            raise ApprovalMismatch(
                f"approval request {request.id!r} is for {existing.action.name} "
                f"{existing.action.args_hash}, not {request.action.name} {request.action.args_hash}"
            )
        return existing

    def get(self, request_id: str) -> ApprovalRequest:
        return self._read(request_id)[0]

    def list(
        self, *, state: RequestState | None = None, run_id: str | None = None
    ) -> list[ApprovalRequest]:
        docs = self._select(state.value if state else None, run_id)
        return [ApprovalRequest.model_validate_json(d) for d in docs]

    def decide(
        self,
        request_id: str,
        verdict: Verdict,
        by: Approver,
        *,
        reason: str | None = None,
        args: dict[str, Any] | None = None,
    ) -> Decision:
        verdict = Verdict(verdict)
        if (verdict is Verdict.EDITED) != (args is not None):
            raise ApprovalError(
                "edited arguments are given with an 'edited' verdict, and only then"
            )
        while True:
            request, version = self._read(request_id)
            if request.state is not RequestState.PENDING:
                raise AlreadyDecided(request)
            if not by.may_decide(request.approvers):
                raise NotAnApprover(request, by)
            action = request.action if args is None else Action.of(request.action.name, args)
            decision = Decision(
                request_id=request_id,
                verdict=verdict,
                by=by.subject,
                at=now(),
                reason=reason,
                action=action,
            )
            detail = {"edited_from": request.action.args_hash} if args is not None else {}
            updated = _decided(request, decision, detail)
            if self._swap(updated, updated.model_dump_json(), version):
                return decision

    def expire(self, request_id: str, round: int) -> ApprovalRequest:
        while True:
            request, version = self._read(request_id)
            at = now()
            if (
                request.state is not RequestState.PENDING
                or request.round != round
                or request.deadline is None
                or request.deadline > at
            ):
                return request
            updated = _expired(request, at)
            if self._swap(updated, updated.model_dump_json(), version):
                return updated

    def consume(self, request_id: str, run_id: str, step_id: str, args_hash: str) -> Decision:
        call = f"{run_id}/{step_id}"
        while True:
            request, version = self._read(request_id)
            d = request.decision
            if d is None or not d.approved:
                raise ApprovalMismatch(
                    f"approval request {request_id!r} is {request.state.value}; "
                    "only an approved request releases a call"
                )
            if d.action.args_hash != args_hash:
                raise ApprovalMismatch(
                    f"approval request {request_id!r} approved {d.action.name} with arguments "
                    f"{d.action.args_hash}, not {args_hash}; ask again for these arguments"
                )
            if request.consumed_by == call:
                return d  # the same call again: a replay
            if request.consumed_by is not None:
                raise ApprovalMismatch(
                    f"approval request {request_id!r} already released the call "
                    f"{request.consumed_by}; another call needs its own approval"
                )
            entry = HistoryEntry(at=now(), event="consumed", by=call, args_hash=args_hash)
            updated = request.model_copy(
                update={"consumed_by": call, "history": (*request.history, entry)}
            )
            if self._swap(updated, updated.model_dump_json(), version):
                return d


def _decided(
    request: ApprovalRequest, decision: Decision, detail: dict[str, Any]
) -> ApprovalRequest:
    entry = HistoryEntry(
        at=decision.at,
        event=("expired:" if decision.expired else "") + decision.verdict.value,
        by=decision.by,
        reason=decision.reason,
        args_hash=decision.action.args_hash,
        detail=detail,
    )
    return request.model_copy(
        update={
            "state": RequestState(decision.verdict.value),
            "decision": decision,
            "history": (*request.history, entry),
        }
    )


def _expired(request: ApprovalRequest, at: datetime) -> ApprovalRequest:
    """The request after its deadline passed: escalated to the next group if it escalates and
    one is left, else decided by its on_expire path (an exhausted escalation rejects)."""
    if request.on_expire is OnExpire.ESCALATE and request.round < len(request.escalate_to):
        group = request.escalate_to[request.round]
        step = request.expires_in or 0.0
        deadline = at + timedelta(seconds=step) if step else None
        entry = HistoryEntry(
            at=at,
            event="escalated",
            by=EXPIRY_SUBJECT,
            args_hash=request.action.args_hash,
            detail={
                "from": list(request.approvers),
                "to": list(group),
                "deadline": deadline.isoformat() if deadline else None,
            },
        )
        return request.model_copy(
            update={
                "approvers": group,
                "round": request.round + 1,
                "deadline": deadline,
                "history": (*request.history, entry),
            }
        )
    verdict = Verdict.APPROVED if request.on_expire is OnExpire.APPROVE else Verdict.REJECTED
    decision = Decision(
        request_id=request.id,
        verdict=verdict,
        by=EXPIRY_SUBJECT,
        at=at,
        reason=f"no decision by {request.deadline.isoformat() if request.deadline else 'never'}",
        action=request.action,
        expired=True,
    )
    return _decided(request, decision, {"on_expire": request.on_expire.value})
