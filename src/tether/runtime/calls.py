"""The one call path every `ctx.tool` and `ctx.model` call takes.

    journal hit? -> stored result (no guard, no dispatch, no cost)
    guards.before (I9 policy, I10 budget/loop)      refusal: journaled with its decisions
    dispatch: I1 ToolRunner | I12 ModelRouter (per-attempt rate limit + breaker hook)
    guards.after (cost cap, token bucket, breaker)
    journal the result with the decisions, then price it (I11) and emit its span (I4)

The decisions and the routing are journaled in the entry, so a replay returns the same result
by the same path without asking a guard again, and `tether inspect` shows why.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from pydantic import TypeAdapter

from tether.errors import (
    BudgetPaused,
    GuardError,
    ModelError,
    ToolArgumentError,
    ToolFailed,
    UnsafeReplayError,
)
from tether.foundation.checkpoint.contract import (
    EntryKind,
    EntryStatus,
    JournalEntry,
    Wait,
    WaitKind,
)
from tether.foundation.checkpoint.events import BUDGET_EVENT
from tether.foundation.guards.chain import RouteGuard
from tether.foundation.guards.contract import (
    CallKind,
    CallOutcome,
    GuardDecision,
    GuardedCall,
    SubBudget,
)
from tether.foundation.identity.contract import Identity
from tether.foundation.models.contract import ModelRequest, RoutedResponse
from tether.foundation.tools.contract import ReplayClass, ToolDef, ToolInvocation
from tether.foundation.trace.contract import SpanEvent
from tether.runtime.branches import in_branch
from tether.runtime.execution import Execution, NeedsAttention
from tether.runtime.retry import RetryPolicy
from tether.runtime.tokens import StreamedTokens


def _identity(ex: Execution) -> Identity | None:
    raw = ex.run.meta.get("identity")
    return Identity.model_validate(raw) if raw else None


def root_of(ex: Execution) -> tuple[str, str]:
    """The run tree's root (run id, name@version): its budget is the one every descendant
    spends from. A child learns it from its run meta, written when it was invoked."""
    meta = ex.run.meta
    return meta.get("root_id") or ex.run.id, meta.get("root_workflow") or ex.wf.id


def _guarded(
    ex: Execution,
    sid: str,
    kind: CallKind,
    target: str,
    arguments: dict[str, Any],
    sensitivity: str = "internal",
    attempt: int = 1,
    approval: str | None = None,
) -> GuardedCall:
    root, root_workflow = root_of(ex)
    return GuardedCall(
        run_id=ex.run.id,
        workflow=ex.wf.id,
        step_id=sid,
        kind=kind,
        target=target,
        arguments=arguments,
        sensitivity=sensitivity,
        identity=_identity(ex),
        root_run_id=root,
        root_workflow=root_workflow,
        attempt=attempt,
        sub_budgets=tuple(SubBudget.model_validate(b) for b in ex.run.meta.get("budgets", ())),
        approval=approval,
    )


# One pydantic-core call for a call's decisions, not one model_dump (and its Python) each
_DECISIONS: TypeAdapter[list[GuardDecision]] = TypeAdapter(list[GuardDecision])


def _decisions(decisions: Sequence[GuardDecision]) -> list[Any]:
    dumped: list[Any] = _DECISIONS.dump_python(list(decisions), mode="json")
    return dumped


def _events(decisions: Sequence[GuardDecision], at: float) -> list[SpanEvent]:
    """Guard decisions as events of the span of the call they guarded: which guard and rule,
    what it decided and why (the reason goes through the redactor with the span)."""
    return [
        SpanEvent(
            f"{d.guard} {d.outcome}",
            int(at * 1e9),
            {
                "tether.guard": d.guard,
                "tether.guard.rule": d.rule,
                "tether.guard.outcome": d.outcome,
                "tether.guard.reason": d.reason,
            },
        )
        for d in decisions
    ]


def _pause(ex: Execution, sid: str) -> BaseException:
    """Budget as control flow: park the run (status paused) until `tether budget raise` sends
    the budget event for its tree's root; then the call is judged again. Every run of a tree
    pauses so at its next guarded call, and one raise wakes them all. Each pause of one call
    has its own id."""
    n = 1
    while f"{sid}~budget{n}" in ex.done:
        n += 1
    return ex.suspend(
        Wait(
            step_id=f"{sid}~budget{n}",
            name="budget raised",
            kind=WaitKind.EVENT,
            event=BUDGET_EVENT,
            match={"root_id": root_of(ex)[0]},
        )
    )


async def _refused(
    ex: Execution,
    sid: str,
    kind: EntryKind,
    name: str,
    inputs: dict[str, Any],
    error: GuardError,
    attempt: int,
) -> None:
    """Journal a guard's refusal with every decision made, so the audit and the run agree."""
    decisions = getattr(error, "decisions", ())
    inputs = {**inputs, "guards": _decisions(decisions)}
    entry = await _write(
        ex, sid, kind, name, attempt, EntryStatus.ERROR, None, inputs, error, time.time()
    )
    refusal = decisions[-1] if decisions else None
    ex.span(
        entry,
        _events(decisions, entry.started_at),
        **{
            "error.type": type(error).__name__,
            "tether.guard": refusal.guard if refusal else "",
            "tether.guard.rule": refusal.rule if refusal else "",
        },
    )


async def _write(
    ex: Execution,
    sid: str,
    kind: EntryKind,
    name: str,
    attempt: int,
    status: EntryStatus,
    value: str | None,
    inputs: dict[str, Any],
    error: BaseException | None,
    started: float,
) -> JournalEntry:
    entry = ex.entry(
        sid,
        kind,
        name,
        attempt=attempt,
        status=status,
        value=value,
        error=error,
        input=ex.codec.encode(inputs),
        started_at=started,
    )
    await ex.write(entry, in_branch())
    return entry


def _decode(tool: ToolDef, text: str) -> Any:
    """The tool's typed result; None when a person resolved an interrupted call with --skip
    (the call is done, and there is no result to type)."""
    return None if text == "null" else tool.decode_result(text)


async def call_tool(
    ex: Execution,
    sid: str,
    tool: ToolDef,
    args: dict[str, Any],
    retry: RetryPolicy,
    approval: str | None = None,
) -> Any:
    """`approval` is the I6 request whose decision released the call: I1 spends it on the
    call's intent row."""
    entry = ex.replayed(sid, tool.name, EntryKind.TOOL)
    if entry is not None:
        if entry.status is EntryStatus.ERROR:
            ex.raise_entry_error(entry)
        return _decode(tool, ex.codec.resolve(entry.value or "null"))
    ex.check_stopping()
    attempt = ex.attempts.get(sid, 0)
    inputs: dict[str, Any] = {"args": args}
    runner, chain = ex.foundations.tools, ex.foundations.guards
    if 0 < attempt < retry.max_attempts:  # resumed between attempts: a parked backoff
        await ex.backoff(sid, tool.name, attempt, retry, resumed=True)
    while True:
        attempt += 1
        call = _guarded(ex, sid, "tool", tool.name, args, attempt=attempt, approval=approval)
        started = time.time()
        try:
            decisions = chain.before(call)
        except BudgetPaused:
            raise _pause(ex, sid) from None
        except GuardError as e:
            await _refused(ex, sid, EntryKind.TOOL, tool.name, inputs, e, attempt)
            raise
        inputs["guards"] = _decisions(decisions)
        ex.commit_recorded()
        try:
            outcome = await runner.call(
                ToolInvocation(ex.run.id, sid, attempt, tool, args, approval=approval)
            )
        except UnsafeReplayError as e:
            raise NeedsAttention(
                sid, json.dumps({"type": "UnsafeReplayError", "message": str(e)})
            ) from e
        except (ToolArgumentError, ToolFailed) as e:
            after = chain.after(call, CallOutcome(ok=False, error=str(e)))
            final = (
                isinstance(e, ToolArgumentError)
                or tool.replay is ReplayClass.UNSAFE_ON_REPLAY
                or not retry.should_retry(e, attempt)
            )
            failed = await _write(
                ex,
                sid,
                EntryKind.TOOL,
                tool.name,
                attempt,
                EntryStatus.ERROR if final else EntryStatus.ATTEMPT,
                None,
                inputs,
                e,
                started,
            )
            ex.span(
                failed,
                _events(decisions, failed.started_at) + _events(after, failed.finished_at),
                **_tool_attributes(tool, replayed=False),
                **{"error.type": type(e).__name__},
            )
            if final:
                raise
            await ex.backoff(sid, tool.name, attempt, retry)
            ex.check_stopping()
            continue
        after = chain.after(call, CallOutcome(ok=True))
        inputs["guards"] += _decisions(after)
        if outcome.idempotency_key:
            inputs["idempotency_key"] = outcome.idempotency_key
        entry = await _write(
            ex,
            sid,
            EntryKind.TOOL,
            tool.name,
            attempt,
            EntryStatus.OK,
            ex.codec.encode(outcome.value),
            inputs,
            None,
            outcome.started_at,
        )
        ex.span(
            entry,
            _events(decisions, entry.started_at) + _events(after, entry.finished_at),
            **_tool_attributes(tool, replayed=outcome.replayed),
        )
        return _decode(tool, outcome.json)


def _tool_attributes(tool: ToolDef, replayed: bool) -> dict[str, Any]:
    return {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": tool.name,
        "tether.tool.replay": tool.replay.value,
        "tether.tool.replayed": replayed,
    }


async def call_model(
    ex: Execution, sid: str, request: ModelRequest, stream: str | None = None
) -> Any:
    name = request.task_class
    entry = ex.replayed(sid, name, EntryKind.MODEL)
    if entry is not None:
        if entry.status is EntryStatus.ERROR:
            ex.raise_entry_error(entry)
        return RoutedResponse.model_validate_json(ex.codec.resolve(entry.value or "")).response
    ex.check_stopping()
    attempt = ex.attempts.get(sid, 0) + 1
    summary = {
        "messages": len(request.messages),
        "tools": [t.name for t in request.tools],
        "last": request.messages[-1].content[:500] if request.messages else "",
    }
    inputs: dict[str, Any] = {"request": request.model_dump(mode="json")}
    call = _guarded(ex, sid, "model", name, summary, request.sensitivity.value, attempt)
    chain, foundations = ex.foundations.guards, ex.foundations
    started = time.time()
    try:
        decisions = list(chain.before(call))
    except BudgetPaused:
        raise _pause(ex, sid) from None
    except GuardError as e:
        await _refused(ex, sid, EntryKind.MODEL, name, inputs, e, attempt)
        raise
    judged = len(decisions)  # decided before dispatch; the rest per attempt and after
    hook = RouteGuard(chain, call)
    ex.commit_recorded()
    tokens = StreamedTokens(ex, sid, stream) if stream is not None else None
    try:
        routed = await foundations.models.complete(request, before_attempt=hook, tokens=tokens)
        if tokens is not None:
            tokens.flush()
    except (ModelError, GuardError) as e:
        if tokens is not None:
            tokens.flush()  # a failed call's tokens stay, as an interrupted attempt's do
        decisions += hook.finish(CallOutcome(ok=False, error=str(e)))
        inputs["guards"] = _decisions(decisions)
        failed = await _write(
            ex, sid, EntryKind.MODEL, name, attempt, EntryStatus.ERROR, None, inputs, e, started
        )
        ex.span(
            failed,
            _events(decisions[:judged], started) + _events(decisions[judged:], failed.finished_at),
            **{"gen_ai.operation.name": "chat", "error.type": type(e).__name__},
        )
        raise
    price = foundations.cost.price(routed)
    usage = routed.response.usage
    decisions += hook.finish(
        CallOutcome(
            ok=True, tokens=usage.input_tokens + usage.output_tokens, cost_usd=float(price.usd)
        )
    )
    inputs["guards"] = _decisions(decisions)
    entry = await _write(
        ex,
        sid,
        EntryKind.MODEL,
        name,
        attempt,
        EntryStatus.OK,
        ex.codec.encode(routed.model_dump(mode="json")),
        inputs,
        None,
        started,
    )
    record = foundations.cost.record(ex.run.id, ex.wf.id, sid, routed, price)
    d = routed.decision
    ex.span(
        entry,
        _events(decisions[:judged], started) + _events(decisions[judged:], entry.finished_at),
        **{
            "gen_ai.operation.name": "chat",
            "gen_ai.system": d.backend,
            "gen_ai.request.model": d.model,
            "gen_ai.response.model": routed.response.model,
            "tether.model.family": d.family,
            "tether.model.fell_back": d.fell_back,
            **record.span_attributes(),
        },
    )
    return routed.response
