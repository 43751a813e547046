"""`ctx.approval` and approval-gated tool calls on Temporal, with runtime/approvals.py's
semantics and ids: the request is opened in I6 by a journaled step (an activity running the
runtime's own), the run parks in I2 on the `tether.approval` event for that request with the
request's deadline as the wait's timer, and an expiry that fires first is a journaled step
asking I6 to expire that round. An approved tool call carries its decision to the activity
that makes it, where I1's intent row spends it and I6 is told, as on the local engine.

Whether an I9 rule demands an approval is judged by the call's activity (the rules and the
caller's identity live below the engine), which then dispatches nothing and says so; an
execution that finds the approval step in the run's journal asks again without asking the
rules, as demanded_by_policy replays. I6 is told of each spent approval when its call is
made and again when the run ends (the local engine tells it on every later replay)."""

from __future__ import annotations

import json
from functools import partial
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from tether.errors import ApprovalRejected
from tether.foundation.checkpoint.contract import EntryKind, EntryStatus
from tether.foundation.engine.backends.temporal.messages import ApprovalCall, CallRequest
from tether.foundation.hitl.contract import Action, ApprovalRequest, Decision, OnExpire
from tether.foundation.tools.contract import ToolDef
from tether.runtime import approvals
from tether.runtime.branches import BRANCH

DEMANDED = "ApprovalDemanded"  # the type of the call activity's failure carrying the rule

if TYPE_CHECKING:
    from tether.foundation.engine.backends.temporal.context import TemporalContext


async def ask(
    ctx: TemporalContext,
    sid: str,
    action: Action,
    options: approvals.Options,
    reason: str | None,
) -> Decision:
    if BRANCH.get():
        raise TypeError(
            "an approval inside ctx.gather is not supported on the temporal engine (a "
            "gather's branches share one I2 lease, which a park gives up); ask before or "
            "after the gather"
        )
    approvers, expires_in, on_expire, escalate_to = options
    opening = ApprovalCall(
        run_id=ctx.run_id,
        token="",
        step_id=sid,
        op="open",
        action=ctx._codec.encode(action.model_dump(mode="json")),
        approvers=list(approvers),
        expires_in=expires_in,
        on_expire=on_expire.value,
        escalate_to=[list(g) for g in escalate_to],
        reason=reason,
    )
    request = await _step(ctx, opening, f"approval:{action.name}")
    while True:
        wait = approvals.decision_wait(ctx._next_id(), request)
        out = await ctx._park(wait, partial(_decided_or_due, ctx, wait.deadline))
        data = json.loads(ctx._codec.resolve(out.value or "null"))
        if data is not None:
            return Decision.model_validate(data["decision"])
        expiry = ApprovalCall(
            run_id=ctx.run_id,
            token="",
            step_id=ctx._next_id(),
            op="expire",
            request_id=request.id,
            round=request.round,
        )
        request = await _step(ctx, expiry, "approval:expire")
        if request.decision is not None:
            return request.decision


async def _decided_or_due(ctx: TemporalContext, deadline: float | None, seen: int) -> None:
    await ctx._woken_by_signal(seen, deadline)


async def _step(ctx: TemporalContext, call: ApprovalCall, name: str) -> ApprovalRequest:
    """The journaled step, answered from the run's journal when an earlier execution made
    it (a retry, a continue-as-new)."""
    entry = ctx._replayed(call.step_id, name, EntryKind.STEP)
    if entry is None or entry.status != EntryStatus.OK.value or entry.value is None:
        call.token = ctx._lease_token()
        text: str = await workflow.execute_activity(
            "tether.approval", call, result_type=str, **ctx._options()
        )
    else:
        text = entry.value
    return ApprovalRequest.model_validate_json(ctx._codec.resolve(text))


def checked(tool: ToolDef, given: dict[str, Any]) -> approvals.Options:
    """`ctx.tool`'s approval options as the local context checks them (ApprovalError or
    TypeError naming what is wrong, before anything is written)."""
    options = dict(given)
    options.pop("reason", None)
    result = approvals.check_options(
        options.pop("approvers", tool.approvers),
        options.pop("expires_in", None),
        options.pop("on_expire", OnExpire.REJECT),
        options.pop("escalate_to", ()),
    )
    if options:
        raise TypeError(f"unknown approval options: {', '.join(options)}")
    return result


class Demanded(Exception):
    """The call's activity found that an I9 rule demands an approval (`ruled`: its options)
    and dispatched nothing."""

    def __init__(self, ruled: dict[str, Any]) -> None:
        super().__init__("an I9 rule demands an approval")
        self.ruled = ruled


def demanded(e: ActivityError) -> Demanded | None:
    cause = e.cause
    if not isinstance(cause, ApplicationError) or cause.type != DEMANDED:
        return None
    return Demanded(json.loads(str(next(iter(cause.details)))))


def asked_before(ctx: TemporalContext, sid: str, tool: ToolDef) -> dict[str, Any] | None:
    """The approval options a call at `sid` asked with in an earlier execution of the run
    (its journal has the approval step there, not the call), as demanded_by_policy replays
    them: the journal's path, whatever the rules say now."""
    entry = ctx._journal.get(sid)
    if entry is None or entry.kind != EntryKind.STEP.value or entry.value is None:
        return None
    if entry.name != f"approval:{tool.name}":
        return None
    asked = json.loads(ctx._codec.resolve(entry.value))
    return {"approvers": tuple(asked["approvers"])}


async def gated_tool(
    ctx: TemporalContext,
    req: CallRequest,
    tool: ToolDef,
    given: dict[str, Any] | None,
    ruled: dict[str, Any],
) -> Any:
    """The tool call at `req.step_id` after I6 approved it (the rule's approvers win over the
    tool's and the caller's, as locally); ApprovalRejected if it was rejected."""
    options = {"approvers": tool.approvers, **(given or {}), **ruled}
    args = json.loads(ctx._codec.resolve(req.arguments))
    action = Action.of(tool.name, tool.validate_args(args))
    decision = await ask(ctx, req.step_id, action, checked(tool, options), options.get("reason"))
    if not decision.approved:
        raise ApprovalRejected(decision)
    released = req.model_copy(
        update={
            "step_id": ctx._next_id(),
            "arguments": ctx._codec.encode(dict(decision.action.args)),
            "approval": decision.model_dump_json(),
        }
    )
    try:
        return await ctx._tool(released, tool)
    finally:  # I6 is told again at the run's end, should it have missed the call's telling
        ctx.spent.append((released.approval, released.step_id))
