"""The activities a tether workflow on Temporal calls: the run's I2 lease, a step, a tool or
model call, a park on a wait, a child's run row, and the run's end in I2's runs index.

Each step, tool and model call executes through tether's own runtime code (`Context._step`,
`calls.call_tool`, `calls.call_model`) on an `Execution` bound to the run's I2 journal and the
lease the engine holds for the run. So below Temporal everything behaves as on the local
engine: a committed step never runs again (a re-delivered activity finds its entry in the
journal), attempts are journaled, tool calls go through I1's ledger (`tool_call_results`), so
an `unsafe_on_replay` call interrupted by a killed worker parks the run as needs_attention
when Temporal delivers the activity again, instead of being sent twice; guards, budgets, cost
and spans are the runtime's. Temporal retries an activity only when its worker is lost (its
heartbeat stops); tether's retry policy retries inside it, as it does locally.

Parking is I2's, as on the local engine: a sleep, an event wait or a child's result parks
the run in I2 (`park`, which releases the lease and marks it sleeping or waiting, or hands
back the completion at once: a due timer, a held event, a finished child). Temporal's timer,
a wake signal or the child's end then has the workflow take the lease again and ask I2 for
the completion, which I2 journaled when it woke the run. So `tether runs` shows a parked run
as the local engine does, and held events and match semantics are I2's own.

A step is called by name (`module:qualname`) since another worker may run it; a lambda or a
closure runs as a local activity of the worker executing the workflow (LOCAL_CALLS).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import json
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, get_type_hints

from temporalio import activity
from temporalio.exceptions import ApplicationError

from tether.foundation.checkpoint.contract import (
    TERMINAL,
    Accept,
    Claim,
    EntryStatus,
    JournalEntry,
    LeaseLost,
    NewRun,
)
from tether.foundation.engine.backends.temporal.approving import DEMANDED
from tether.foundation.engine.backends.temporal.failures import to_failure
from tether.foundation.engine.backends.temporal.messages import (
    ApprovalCall,
    CallRequest,
    ChildCall,
    Claimed,
    Entry,
    Finish,
    Parked,
    Retry,
    RunArgs,
    StepCall,
    StepDone,
    StreamCall,
    WaitCall,
)
from tether.foundation.hitl.contract import Action, Decision, OnExpire
from tether.foundation.models.contract import ModelRequest
from tether.foundation.tools.registry import tools as TOOLS
from tether.runtime import approvals
from tether.runtime.calls import call_model, call_tool
from tether.runtime.context import Context
from tether.runtime.execution import Execution
from tether.runtime.ids import new_run_id
from tether.runtime.retry import DEFAULT_RETRY, RetryPolicy
from tether.runtime.values import adapter_for
from tether.runtime.worker import Services

# a run's lease in I2 is held by its Temporal execution until the run parks or ends: Temporal,
# not I2's leases, decides which worker executes it
LIFETIME_LEASE = 10 * 365 * 24 * 3600.0
OWNER = "temporal"

# A local activity's call, left by the workflow in this process: (fn, args, kwargs, retry).
# Local activities re-run when a worker dies before its workflow task completes, so they are
# for steps (idempotent by tether's rule), never for tools or models.
LOCAL_CALLS: dict[str, tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any], RetryPolicy]] = {}


def function_name(fn: Callable[..., Any]) -> str:
    """`module:qualname` of a step's function, or TypeError saying why it cannot be called by
    name on another worker (the step then runs as a local activity)."""
    qualname = getattr(fn, "__qualname__", "")
    module = getattr(fn, "__module__", None)
    if not module or not qualname or "<" in qualname:
        raise TypeError(f"{fn!r} has no name another worker can import")
    if resolve_function(f"{module}:{qualname}") is not fn:
        raise TypeError(f"{module}:{qualname} does not import as {fn!r}")
    return f"{module}:{qualname}"


def resolve_function(name: str) -> Any:
    module, _, qualname = name.partition(":")
    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


def typed_arguments(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """A named step's arguments crossed history as JSON: a pydantic model arrives as a dict.
    Each is validated against the function's annotation again, so the function gets what the
    workflow passed, as it would on the local engine."""
    try:
        hints = get_type_hints(fn)
        sig = inspect.signature(fn)
        bound = sig.bind(*args, **kwargs)
    except (TypeError, ValueError, NameError):
        return args, kwargs  # the call itself will say what is wrong
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    for name, value in bound.arguments.items():
        if name in hints and sig.parameters[name].kind not in variadic:
            bound.arguments[name] = adapter_for(hints[name]).validate_python(value)
    return bound.args, bound.kwargs


def retry_data(policy: RetryPolicy) -> Retry:
    return Retry(
        max_attempts=policy.max_attempts,
        initial_interval=policy.initial_interval,
        backoff=policy.backoff,
        max_interval=policy.max_interval,
        jitter=policy.jitter,
        non_retryable=[f"{e.__module__}:{e.__qualname__}" for e in policy.non_retryable],
        park_after=policy.park_after,
    )


def _policy(data: Retry | None) -> RetryPolicy:
    if data is None:
        return DEFAULT_RETRY
    return RetryPolicy(
        max_attempts=data.max_attempts,
        initial_interval=data.initial_interval,
        backoff=data.backoff,
        max_interval=data.max_interval,
        jitter=data.jitter,
        non_retryable=tuple(resolve_function(n) for n in data.non_retryable),
        park_after=data.park_after,
    )


@contextlib.asynccontextmanager
async def _heartbeats(every: float) -> AsyncIterator[None]:
    """Temporal learns that the worker lives; when it dies, the activity is delivered again."""

    async def beat() -> None:
        while True:  # the timeout runs from the start: a beat at once is a round trip for nothing
            await asyncio.sleep(every)
            activity.heartbeat()

    task = asyncio.create_task(beat()) if activity.info().heartbeat_timeout else None
    try:
        yield
    finally:
        if task is not None:
            task.cancel()


class Activities:
    def __init__(self, services: Services) -> None:
        self.services = services

    def _execution(
        self, run_id: str, token: str, fresh: bool = False, at: str | None = None
    ) -> Execution:
        """The run's execution below the engine; `fresh`: the journal is known to hold nothing
        for the call, so it is not read; `at`: only that step id's rows are read (a long run's
        steps would read the journal whole each time)."""
        s = self.services
        cp = s.checkpointer
        run = cp.get_run(run_id)
        wf = s.registry.for_run(run.workflow, run.version)
        if wf is None:
            raise ApplicationError(f"{run.workflow_id} is not registered here", non_retryable=True)
        journal: list[JournalEntry] = []
        if not fresh:
            journal = cp.journal(run_id) if at is None else cp.journal_at(run_id, at)
        claim = Claim(run=run, token=token, journal=journal)
        return Execution(
            claim,
            wf,
            cp,
            s.codec,
            s.sink,
            default_retry=s.default_retry,
            stopping=threading.Event(),
            foundations=s.foundations,
            # a backoff that may outlast it parks the run, as on the local engine, rather
            # than holding the activity (and its worker slot) through the wait
            lease_seconds=s.lease_seconds,
        )

    async def _run(self, ex: Execution, work: Callable[[], Any]) -> str:
        try:
            async with _heartbeats(self.services.lease_seconds / 3):
                value = await work()
            return value if isinstance(value, str) else ex.codec.encode(value)
        except BaseException as e:
            if isinstance(e, asyncio.CancelledError):
                raise
            raise to_failure(e, ex) from None
        finally:
            ex.emit_spans()
            ex.sink.flush()

    @activity.defn(name="tether.claim")
    async def claim(self, args: RunArgs) -> Claimed:
        """The run's lease for this execution (kept from the last one when it continued as
        new) with the run's finished journal entries, which the execution answers from
        memory; a run that is not runnable (cancelled while pending, or finished) executes
        nothing and ends with what I2 recorded."""
        s = self.services
        token = args.token or claim_for_engine(s, args.run_id)
        if token is None:
            run = s.checkpointer.get_run(args.run_id)
            return Claimed(status=run.status.value, output=run.output, error=run.error)
        journal = s.checkpointer.journal(args.run_id)
        done = [
            Entry(
                step_id=e.step_id, kind=e.kind.value, name=e.name, status=e.status.value,
                value=e.value, error=e.error, ref=e.ref,
            ).model_dump()
            for e in journal
            if e.status is not EntryStatus.ATTEMPT
        ]  # fmt: skip
        known = sorted({e.step_id for e in journal})
        return Claimed(token=token, journal=s.codec.encode(done), known=known)

    @activity.defn(name="tether.wait")
    async def wait(self, call: WaitCall) -> Parked:
        cp, token = self.services.checkpointer, call.token
        if token is not None:
            try:
                return _parked(token, cp.park(call.run_id, token, [call.wait]))
            except LeaseLost as lost:
                if lost.cancel_requested:
                    # a cancel (of it or an ancestor) arrived while it ran: it ends here, at
                    # its next primitive, as under the local driver, whether or not Temporal
                    # ever delivers the cancel to this execution
                    with contextlib.suppress(LeaseLost):  # re-delivered: the first ended it
                        cp.finish_cancel(call.run_id, token)
                token = None  # else parked already: a re-delivery of a park that committed
        run = cp.get_run(call.run_id)
        if run.status in TERMINAL:
            return Parked(ended=True)
        token = claim_for_engine(self.services, call.run_id)
        if token is None:  # woken too early (a clock ahead of I2's, or a spurious signal)
            return Parked()
        return _parked(token, cp.park(call.run_id, token, [call.wait]))

    @activity.defn(name="tether.step")
    async def step(self, call: StepCall) -> StepDone:
        if call.local:
            if call.local not in LOCAL_CALLS:
                raise ApplicationError(
                    f"step {call.name!r} is a closure left by a workflow this process no "
                    "longer executes",
                    non_retryable=True,
                )
            fn, args, kwargs, policy = LOCAL_CALLS[call.local]
        else:
            fn = resolve_function(call.fn)
            given = json.loads(self.services.codec.resolve(call.arguments))
            args, kwargs = typed_arguments(fn, tuple(given["args"]), given["kwargs"])
            policy = _policy(call.retry)
        # a regular activity delivered again (its worker died) may find its step committed;
        # a local one runs again after a failed workflow task with attempt 1, so it reads
        fresh = call.fresh and not call.local and activity.info().attempt == 1
        if call.waited:  # the wait's span is this execution's to emit: it reads the journal
            ex = self._execution(call.run_id, call.token)
        else:
            ex = self._execution(call.run_id, call.token, fresh, at=call.step_id)
        ctx = Context(ex)

        async def work() -> str:
            value = await ctx._step(call.step_id, call.name, fn, args, kwargs, policy)
            entry = ex.done[call.step_id]
            return entry.value if entry.value is not None else ex.codec.encode(value)

        return StepDone(name=call.name, value=await self._run(ex, work))

    @activity.defn(name="tether.stream")
    async def stream(self, call: StreamCall) -> int:
        """The runtime's append: the value and its journal entry in one commit, so a
        re-delivered activity finds the entry and writes nothing again."""
        ex = self._execution(call.run_id, call.token)
        value = json.loads(ex.codec.resolve(call.value))

        async def work() -> str:
            return str(await Context(ex)._stream(call.step_id, call.key, value))

        return int(await self._run(ex, work))

    @activity.defn(name="tether.call")
    async def call(self, req: CallRequest) -> str:
        """A tool or model call; a tool call that an I9 rule demands an approval for, and that
        no decision released, dispatches nothing and fails with the rule's options (the
        workflow asks, then calls again at the next step id, as the local context does)."""
        ex = self._execution(req.run_id, req.token)
        decision = Decision.model_validate_json(req.approval) if req.approval else None
        if req.tool and decision is None:
            args = json.loads(ex.codec.resolve(req.arguments))
            ruled = approvals.demanded_by_policy(ex, req.step_id, TOOLS.get(req.tool), args)
            if ruled:
                raise ApplicationError(
                    "an I9 rule demands an approval", json.dumps(ruled), type=DEMANDED,
                    non_retryable=True,
                )  # fmt: skip

        async def work() -> str:
            if req.tool:
                try:
                    value = await call_tool(
                        ex,
                        req.step_id,
                        TOOLS.get(req.tool),
                        json.loads(ex.codec.resolve(req.arguments)),
                        _policy(req.retry),
                        approval=None if decision is None else decision.request_id,
                    )
                finally:
                    if decision is not None:
                        approvals.tell_broker(ex, decision, req.step_id)
                return ex.codec.encode(value)
            request = ModelRequest.model_validate_json(ex.codec.resolve(req.request))
            response = await call_model(ex, req.step_id, request, req.stream or None)
            return ex.codec.encode(response.model_dump(mode="json"))

        return await self._run(ex, work)

    @activity.defn(name="tether.approval")
    async def approval(self, call: ApprovalCall) -> str:
        """`ctx.approval`'s steps through the runtime's own (runtime/approvals.py), journaled
        at the workflow's step ids."""
        ex = self._execution(call.run_id, call.token)
        if call.op == "open":
            action = Action.model_validate_json(ex.codec.resolve(call.action))
            groups = tuple(tuple(g) for g in call.escalate_to)
            make = approvals.opening(
                ex, call.step_id, action, tuple(call.approvers), call.expires_in,
                OnExpire(call.on_expire), groups, call.reason,
            )  # fmt: skip
            name = f"approval:{action.name}"
        else:
            make, name = approvals.expiring(ex, call.request_id, call.round), "approval:expire"

        async def work() -> str:
            request = await Context(ex)._step(call.step_id, name, make, (), {}, None)
            entry = ex.done[call.step_id]
            return entry.value if entry.value is not None else ex.codec.encode(request)

        return await self._run(ex, work)

    @activity.defn(name="tether.child")
    async def child(self, call: ChildCall) -> str:
        """The child's row in I2's runs index (idempotent on the parent's step), pending until
        its own execution claims it."""
        cp = self.services.checkpointer
        run, _ = cp.create_run(
            NewRun(
                id=new_run_id(),
                workflow=call.workflow,
                version=call.version,
                input=call.input,
                key=f"child:{call.parent_id}:{call.step_id}",
                parent_id=call.parent_id,
                parent_step=call.step_id,
                meta={"step_name": call.name, "engine": "temporal"},
            )
        )
        return run.id

    @activity.defn(name="tether.finish")
    async def finish(self, end: Finish) -> None:
        cp, token = self.services.checkpointer, end.token
        if end.spent:  # a no-op read for each once I6 knows
            ex = self._execution(end.run_id, token or "")
            for decision, call_sid in end.spent:
                approvals.tell_broker(ex, Decision.model_validate_json(decision), call_sid)
        if token is None:  # it ended while parked: a failure needs the lease to be written
            if cp.get_run(end.run_id).status in TERMINAL:
                return  # the cancel that ended it wrote its end
            token = claim_for_engine(self.services, end.run_id)
            if token is None:
                raise ApplicationError(f"run {end.run_id} is not ours to end", non_retryable=True)
        try:
            if end.status == "completed":
                cp.complete(end.run_id, token, end.output or "null")
            elif end.status == "cancelled":
                cp.finish_cancel(end.run_id, token)
            elif end.status == "needs_attention":
                cp.needs_attention(end.run_id, token, end.failed_step or "", end.evidence or "")
            else:
                cp.fail(end.run_id, token, end.error or "{}", end.failed_step)
        except LeaseLost as lost:
            if cp.get_run(end.run_id).status in TERMINAL:
                return  # a cancel met at its park ended it while this end was on its way
            # a cancel requested while it ran (of it or of an ancestor) wins, as in the
            # local driver; any other loss means the index moved on without us
            if not lost.cancel_requested:
                raise ApplicationError(str(lost), non_retryable=True) from None
            cp.finish_cancel(end.run_id, token)


def claim_for_engine(services: Services, run_id: str) -> str | None:
    """Take the run's I2 lease for the engine until it parks or ends; None if the run is not
    runnable (parked with nothing due, cancelled, finished, or leased already)."""
    cp = services.checkpointer
    run = cp.get_run(run_id)
    accepts = [Accept(workflow=run.workflow, version=run.version)]
    claims = cp.claim(OWNER, accepts, 1, LIFETIME_LEASE, run_id=run_id)
    return claims[0].token if claims else None


def _parked(token: str, resolved: list[JournalEntry]) -> Parked:
    """What `park` answered: the wait's completion (the lease kept) or parked (released)."""
    if not resolved:
        return Parked()
    (entry,) = resolved
    return Parked(
        token=token,
        kind=entry.kind.value,
        status=entry.status.value,
        value=entry.value,
        error=entry.error,
    )
