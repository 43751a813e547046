"""`ctx.approval` and approval-gated tool calls: a request in I6, a durable wait on its decision.

The request is created by a journaled step (so its deadline is fixed once) under an id made of
the run and that step's id. The run then parks on the event `tether.approval` for that request
with the request's deadline as the wait's own timer: expiry is a durable timer the run owns, not
a poller. When the timer fires first, a journaled step asks I6 to expire that round: the
request is rejected, approved, or escalated to the next group with a new deadline (and the run
parks again); a decision that landed just before the timer is found there. Every wait's outcome
is journaled, so a resumed run replays its decision without asking again.

An approved tool call is released by its decision and spends it where the call's intent is
recorded: I1's row for (run, step id) names the request (the runner refuses a call bringing an
approval another call spent). I6 may be another database, so no transaction spans the two: I6
is told afterwards, idempotently, whenever the row exists (replays included), so a crash or
an I6 outage between the two leaves the row to say what happened and a later pass tells I6.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from tether.errors import ApprovalRejected, TetherError
from tether.foundation.checkpoint.contract import EntryKind, Wait, WaitKind
from tether.foundation.hitl.contract import (
    APPROVAL_EVENT,
    Action,
    ApprovalError,
    ApprovalRequest,
    Decision,
    OnExpire,
)
from tether.foundation.policy.gate import PolicyGate
from tether.foundation.tools.contract import ToolDef
from tether.runtime.calls import _guarded, call_tool
from tether.runtime.retry import RetryPolicy

__all__ = [
    "ApprovalRejected",
    "Options",
    "approved_tool",
    "ask",
    "check_options",
    "decision_wait",
    "demanded_by_policy",
    "expiring",
    "opening",
    "tell_broker",
]

if TYPE_CHECKING:
    from tether.runtime.context import Context
    from tether.runtime.execution import Execution

log = logging.getLogger(__name__)
WAIT_NAME = "approval:wait"


# approvers, expires_in (seconds), on_expire, escalation groups: as checked and stored
Options = tuple[tuple[str, ...], float | None, OnExpire, tuple[tuple[str, ...], ...]]


def check_options(
    approvers: Sequence[str],
    expires_in: float | timedelta | None,
    on_expire: OnExpire | str,
    escalate_to: Sequence[Sequence[str]],
) -> Options:
    """The options as stored, or an ApprovalError saying what is wrong (before anything is
    written)."""
    if isinstance(approvers, str):
        approvers = (approvers,)
    if not approvers:
        raise ApprovalError("an approval needs approvers: identities or 'role:<name>'")
    seconds = expires_in.total_seconds() if isinstance(expires_in, timedelta) else expires_in
    if seconds is not None and seconds <= 0:
        raise ApprovalError(f"expires_in must be in the future, not {seconds} s")
    try:
        path = OnExpire(on_expire)
    except ValueError:
        raise ApprovalError(
            f"on_expire is 'reject', 'approve' or 'escalate', not {on_expire!r}"
        ) from None
    groups = tuple((g,) if isinstance(g, str) else tuple(g) for g in escalate_to)
    if path is OnExpire.ESCALATE and (not groups or seconds is None):
        raise ApprovalError("on_expire='escalate' needs escalate_to groups and expires_in")
    return tuple(approvers), seconds, path, groups


def opening(
    ex: Execution,
    sid: str,
    action: Action,
    approvers: tuple[str, ...],
    expires_in: float | None,
    on_expire: OnExpire,
    escalate_to: tuple[tuple[str, ...], ...],
    reason: str | None,
) -> Callable[[], ApprovalRequest]:
    """The step that creates the request in I6 and notifies its transports (the temporal
    engine journals it from an activity, as `ask` does here)."""
    broker = ex.foundations.hitl

    def create() -> ApprovalRequest:
        at = datetime.now(UTC)
        stored = broker.create(
            ApprovalRequest(
                id=f"{ex.run.id}:{sid}",
                run_id=ex.run.id,
                step_id=sid,
                action=action,
                approvers=approvers,
                deadline=None if expires_in is None else at + timedelta(seconds=expires_in),
                on_expire=on_expire,
                escalate_to=escalate_to,
                expires_in=expires_in,
                reason=reason,
                requested_by=f"run:{ex.run.id}",
            )
        )
        for transport in ex.foundations.hitl_transports.values():
            transport.notify(stored)  # runs again only if this step did not commit
        return stored

    return create


def expiring(ex: Execution, request_id: str, round: int) -> Callable[[], ApprovalRequest]:
    """The step that asks I6 to expire the request's `round` once its timer fired first."""

    def expire() -> ApprovalRequest:
        return ex.foundations.hitl.expire(request_id, round)

    return expire


async def ask(
    ctx: Context,
    sid: str,
    action: Action,
    approvers: tuple[str, ...],
    expires_in: float | None,
    on_expire: OnExpire,
    escalate_to: tuple[tuple[str, ...], ...],
    reason: str | None,
) -> Decision:
    ex = ctx._ex
    create = opening(ex, sid, action, approvers, expires_in, on_expire, escalate_to, reason)
    request: ApprovalRequest = await ctx._step(sid, f"approval:{action.name}", create, (), {}, None)
    while True:
        data = await _park(ctx, ctx._next_id(), request)
        if data is not None:
            return Decision.model_validate(data["decision"])
        expire = expiring(ex, request.id, request.round)
        request = await ctx._step(ctx._next_id(), "approval:expire", expire, (), {}, None)
        if request.decision is not None:
            return request.decision


def demanded_by_policy(
    ex: Execution, sid: str, tool: ToolDef, args: dict[str, Any]
) -> dict[str, Any]:
    """The approval options an I9 `require_approval` rule sets for this call (its approvers),
    or none. Judged when the call is first made; a replay takes the path the journal took,
    whatever the rules say now: the approval it asked for (whose approvers it holds), or the
    call made without one."""
    done = ex.done.get(sid)
    if done is not None:
        if done.kind is EntryKind.STEP and done.name == f"approval:{tool.name}" and done.value:
            asked = json.loads(ex.codec.resolve(done.value))
            return {"approvers": tuple(asked["approvers"])}
        return {}
    for guard in ex.foundations.guards.guards:
        if isinstance(guard, PolicyGate) and guard.rules.asks_approval:
            rule = guard.rules.approval_rule(_guarded(ex, sid, "tool", tool.name, args))
            if rule is not None:
                return {
                    "approvers": rule.approvers,
                    **({"reason": rule.reason} if rule.reason else {}),
                }
    return {}


async def approved_tool(
    ctx: Context,
    sid: str,
    tool: ToolDef,
    action: Action,
    options: Options,
    reason: str | None,
    retry: RetryPolicy,
) -> Any:
    """Ask for `action`, then run the call with the arguments the decision released (the
    edited ones after edit-and-approve): ApprovalRejected if it was rejected."""
    decision = await ask(ctx, sid, action, *options, reason)
    if not decision.approved:
        raise ApprovalRejected(decision)
    ex, call_sid, released = ctx._ex, ctx._next_id(), decision.action
    try:
        return await call_tool(
            ex, call_sid, tool, dict(released.args), retry, approval=decision.request_id
        )
    finally:
        tell_broker(ex, decision, call_sid)


def tell_broker(ex: Execution, decision: Decision, call_sid: str) -> None:
    """Mirror into I6 what the call's intent row says: the approval was spent on this call.
    Done whenever the row exists, a replay included (a no-op read once I6 knows), so a
    consumption I6 missed (a crash, I6 down) reaches it later; and never fatal, because the
    row, not I6, is what released the call."""
    try:
        row = ex.foundations.tools.lookup(ex.run.id, call_sid)
        if row is not None and row.approval == decision.request_id:
            ex.foundations.hitl.consume(
                decision.request_id, ex.run.id, call_sid, decision.action.args_hash
            )
    except TetherError as e:
        log.warning(
            "approval %s was spent on the call %s/%s, and I6 could not be told: %s",
            decision.request_id, ex.run.id, call_sid, e,
        )  # fmt: skip


def decision_wait(sid: str, request: ApprovalRequest) -> Wait:
    """A `wait_for_event` on the request's decision with the request's deadline, absolute."""
    deadline = request.deadline
    return Wait(
        step_id=sid,
        name=WAIT_NAME,
        kind=WaitKind.EVENT,
        event=APPROVAL_EVENT,
        match={"request_id": request.id},
        deadline=None if deadline is None else deadline.timestamp(),
    )


async def _park(ctx: Context, sid: str, request: ApprovalRequest) -> dict[str, Any] | None:
    ex = ctx._ex
    entry = ex.replayed_wait(sid, WAIT_NAME, EntryKind.EVENT)
    if entry is not None:
        data: dict[str, Any] | None = json.loads(ex.codec.resolve(entry.value or "null"))
        return data
    ex.check_stopping()
    raise ex.suspend(decision_wait(sid, request))
