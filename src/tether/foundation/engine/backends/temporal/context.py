"""The `ctx` a tether workflow receives on Temporal: the same primitives, each mapped onto
Temporal's own, so a `@workflow` runs unchanged.

    ctx.step              an activity (`tether.step`), the function called by name
    ctx.stream            an activity appending the value and its journal entry in I2
    ctx.model(stream=)    the call's activity appends its tokens to the run stream in I2
    ctx.sleep             a park in I2 and a durable timer (workflow.sleep)
    ctx.wait_for_event    a park in I2 woken by a signal (`tether.wake`) once I2 matched an
                          event to the wait, or by a timer at its timeout
    ctx.invoke            a child workflow, its run row in I2 made by an activity; the
                          parent parks in I2 until the child's end is delivered there
    ctx.approval          a request opened in I6 by an activity, then a park in I2 on its
                          decision event with the request's deadline (approving.py)
    ctx.gather            concurrent branches in the workflow's own loop, ids by branch path
    ctx.now/uuid/random   workflow.now(), workflow.uuid4(), workflow.random()

Temporal's history replays the workflow; steps, tool and model calls, streams and the
completions of waits are also journaled in I2 (see activities.py), which is what `tether
inspect` shows and what a retried run resumes from. The context does no I/O but the blob
store's, for values over the threshold (content addressed, so a replay reads what the first
execution wrote).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import uuid as _uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy as TemporalRetry
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError
from temporalio.workflow import ParentClosePolicy

from tether.errors import ChildFailed, NonDeterminismError
from tether.foundation.checkpoint.contract import EntryKind, EntryStatus, Wait, WaitKind
from tether.foundation.engine.backends.temporal import approving
from tether.foundation.engine.backends.temporal.activities import (
    LOCAL_CALLS,
    function_name,
    retry_data,
)
from tether.foundation.engine.backends.temporal.failures import (
    RunEnded,
    backoff_wait,
    rebuilt,
)
from tether.foundation.engine.backends.temporal.messages import (
    WORKFLOW_NAME,
    CallRequest,
    ChildCall,
    Claimed,
    Entry,
    Parked,
    RunArgs,
    StepCall,
    StepDone,
    StreamCall,
    WaitCall,
)
from tether.foundation.hitl.contract import Action, Decision, OnExpire
from tether.foundation.models.contract import (
    Message,
    ModelRequest,
    ModelResponse,
    Sensitivity,
    ToolSpec,
)
from tether.foundation.tools.contract import ToolDef
from tether.runtime import approvals
from tether.runtime.branches import BRANCH, start_branch
from tether.runtime.registry import REGISTRY, Registry, WorkflowDef
from tether.runtime.retry import DEFAULT_RETRY, RetryPolicy
from tether.runtime.values import Codec, return_adapter

T = TypeVar("T")
STEP_TIMEOUT = timedelta(minutes=30)
# a wake that found nothing due (Temporal's clock a little ahead of I2's) looks again after this
_AGAIN = 0.05
_NEVER = 1e9  # park_after for a branch's steps (finite: it crosses history as JSON)


_WAIT_ENTRIES = {
    WaitKind.TIMER: EntryKind.SLEEP,
    WaitKind.EVENT: EntryKind.EVENT,
    WaitKind.CHILD: EntryKind.INVOKE,
}


def _now() -> float:
    return workflow.now().timestamp()


def _in_place_if_branch(policy: RetryPolicy) -> RetryPolicy:
    """A gather's branches share one lease, which a park gives up: in a branch a long
    backoff waits inside the activity (heartbeating) instead of parking the run."""
    return dataclasses.replace(policy, park_after=_NEVER) if BRANCH.get() else policy


def _seconds(duration: float | timedelta) -> float:
    return duration.total_seconds() if isinstance(duration, timedelta) else float(duration)


@dataclass(frozen=True)
class Binding:
    """What the workflow on one task queue executes with: that worker's registry and codec."""

    registry: Registry
    codec: Codec
    prefix: str
    lease_seconds: float
    history_events: int  # past this many, the execution continues as new

    def queue(self, name: str, version: str) -> str:
        return f"{self.prefix}:{name}@{version}"

    def execution_id(self, run_id: str) -> str:
        return f"{self.prefix}:{run_id}"


# Temporal builds the workflow class itself (it must be module level), so the worker that
# polls a task queue leaves its binding here; queue names carry a per-deployment prefix.
BINDINGS: dict[str, Binding] = {}


class TemporalContext:
    """What a workflow function receives as `ctx` when Temporal executes it."""

    def __init__(
        self, args: RunArgs, wf: WorkflowDef, codec: Codec, binding: Binding, claimed: Claimed
    ) -> None:
        self._args, self._wf, self._codec, self._binding = args, wf, codec, binding
        self._lease, self._bound = binding.lease_seconds, binding.history_events
        self._token: str | None = claimed.token  # the run's I2 lease; None while it is parked
        # what the run did before this execution (a retry, a resume, a continue-as-new):
        # answered from memory, as the local engine replays its journal
        journal = json.loads(codec.resolve(claimed.journal))
        self._journal = {e["step_id"]: Entry.model_validate(e) for e in journal}
        self._known = set(claimed.known)
        self._recorded = dict(args.recorded)
        self._seq: dict[str, int] = {}
        self.wakes = 0  # wake signals received: I2 woke the run (an event, a child's end)
        self._drift: NonDeterminismError | None = None
        # (decision JSON, call step id) of the approvals this execution's calls spent
        self.spent: list[tuple[str, str]] = []
        self._waited = False  # a wait completed since the last step (its span is not out yet)

    @property
    def run_id(self) -> str:
        return self._args.run_id

    @property
    def workflow_id(self) -> str:
        return self._wf.id

    @property
    def token(self) -> str | None:
        return self._token

    def check_replay(self) -> None:
        """Raise the first step whose name changed under the run, once past the replay."""
        if self._drift is not None and not workflow.unsafe.is_replaying():
            raise self._drift

    def _replayed(self, sid: str, name: str, kind: EntryKind) -> Entry | None:
        """The run's finished entry at this id from before this execution, after checking it
        is the same primitive."""
        entry = self._journal.get(sid)
        if entry is not None and (entry.name != name or entry.kind != kind.value):
            if self._drift is None:
                journaled = f"{entry.kind} {entry.name}"
                self._drift = NonDeterminismError(sid, journaled, f"{kind.value} {name}")
            self.check_replay()
            return None
        return entry

    def _continue_if_long(self) -> None:
        """Past the history bound, go on in a new execution of this run, carrying the lease
        and the recorded values; it answers everything done so far from I2's journal, so its
        history starts small. Only between primitives of the workflow's top level: a gather's
        branches in flight would be cut."""
        if BRANCH.get() or self._token is None:
            return
        if workflow.info().get_current_history_length() <= self._bound:
            return
        workflow.continue_as_new(
            self._args.model_copy(update={"token": self._token, "recorded": self._recorded})
        )

    def _lease_token(self) -> str:
        self.check_replay()
        self._continue_if_long()
        if self._token is None:
            raise RuntimeError(f"run {self.run_id} is parked; it holds no lease to write with")
        return self._token

    def _next_id(self) -> str:
        """As the local engine's: the caller's branch path plus a per-path number."""
        path = BRANCH.get()
        n = self._seq.get(path, 0) + 1
        self._seq[path] = n
        return f"{path}{n}"

    # -- step ------------------------------------------------------------------------------

    def step(
        self,
        name: str,
        fn: Callable[..., T] | Callable[..., Awaitable[T]],
        *args: Any,
        retry: RetryPolicy | None = None,
        **kwargs: Any,
    ) -> Awaitable[T]:
        """An activity calling `fn` by name when it is importable; else (a lambda, a closure)
        a local activity of this worker."""
        if not callable(fn):
            raise TypeError(f"ctx.step takes a function, not {fn!r}")
        sid = self._next_id()
        policy = _in_place_if_branch(retry or DEFAULT_RETRY)
        call = StepCall(run_id=self.run_id, token="", step_id=sid, name=name)
        try:
            call.fn = function_name(fn)
            call.arguments = self._codec.encode({"args": list(args), "kwargs": kwargs})
            call.retry = retry_data(policy)
        except TypeError:
            call.local = f"{self.run_id}/{workflow.info().run_id}/{sid}"
            LOCAL_CALLS[call.local] = (fn, args, kwargs, policy)
        return self._step(call, fn)

    async def _step(self, call: StepCall, fn: Callable[..., Any]) -> Any:
        entry = self._replayed(call.step_id, call.name, EntryKind.STEP)
        if entry is not None and entry.status == EntryStatus.OK.value:
            LOCAL_CALLS.pop(call.local, None)
            return self._codec.decode(entry.value or "null", return_adapter(fn))
        # nothing in I2 at this id: its activity need not read the journal (a backoff that
        # parked leaves attempts there, so the step's next activity reads it)
        call.fresh = call.step_id not in self._known
        try:
            while True:
                call.token = self._lease_token()
                call.waited, self._waited = self._waited, False
                try:
                    if call.local:
                        done = await workflow.execute_local_activity(
                            "tether.step", call, result_type=StepDone, **self._options()
                        )
                    else:
                        done = await workflow.execute_activity(
                            "tether.step", call, result_type=StepDone, **self._options(),
                            **self._heartbeat(),
                        )  # fmt: skip
                    break
                except (ActivityError, ApplicationError) as e:
                    await self._backoff(e, call.name, call.step_id)
                    call.fresh = False
        finally:
            LOCAL_CALLS.pop(call.local, None)
        if done.name != call.name and self._drift is None:
            # replayed from history under code that changed since; raised once the replay
            # reaches new work, since history must replay to its end for Temporal to take a
            # different command
            self._drift = NonDeterminismError(
                call.step_id, f"step {done.name}", f"step {call.name}"
            )
        return self._codec.decode(done.value, return_adapter(fn))

    def _options(self) -> dict[str, Any]:
        """Temporal retries an activity only when its worker is lost (tether's policy retries
        inside it); a lost worker is noticed when its heartbeats stop."""
        return {
            "start_to_close_timeout": STEP_TIMEOUT,
            "retry_policy": TemporalRetry(
                initial_interval=timedelta(seconds=0.1),
                maximum_interval=timedelta(seconds=2),
                non_retryable_error_types=["StepFailed"],
            ),
        }

    def _heartbeat(self) -> dict[str, Any]:
        return {"heartbeat_timeout": timedelta(seconds=max(1.0, self._lease))}

    # -- streams ---------------------------------------------------------------------------

    def stream(self, key: str, value: Any) -> Awaitable[int]:
        """As the local engine's: journaled by an activity with the value in one commit."""
        if not isinstance(key, str) or not key:
            raise TypeError(
                f"a stream key is a non-empty string, not {key!r}: ctx.stream('progress', value)"
            )
        return self._stream(self._next_id(), key, value)

    async def _stream(self, sid: str, key: str, value: Any) -> int:
        entry = self._replayed(sid, key, EntryKind.STREAM)
        if entry is not None:
            return int(entry.value or 0)
        call = StreamCall(
            run_id=self.run_id,
            token=self._lease_token(),
            step_id=sid,
            key=key,
            value=self._codec.encode(value),
        )
        try:
            offset: int = await workflow.execute_activity(
                "tether.stream", call, result_type=int, **self._options()
            )
        except ActivityError as e:
            raise rebuilt(e, key, sid) from None
        return offset

    # -- tools and models ------------------------------------------------------------------

    def tool(
        self,
        tool: ToolDef,
        /,
        *,
        retry: RetryPolicy | None = None,
        approval: dict[str, Any] | None = None,
        **args: Any,
    ) -> Awaitable[Any]:
        """As the local context's: a tool that requires approval, approval options, or an I9
        rule demanding one ask I6 first (approving.py)."""
        if not isinstance(tool, ToolDef):
            raise TypeError(f"ctx.tool takes a @tool-decorated function, not {tool!r}")
        req = CallRequest(
            run_id=self.run_id,
            token="",
            step_id=self._next_id(),
            tool=tool.name,
            arguments=self._codec.encode(args),
            retry=retry_data(_in_place_if_branch(retry or DEFAULT_RETRY)),
        )
        if tool.requires_approval or approval is not None:
            approving.checked(tool, {"approvers": tool.approvers, **(approval or {})})
            return approving.gated_tool(self, req, tool, approval, {})
        return self._tool(req, tool)

    async def _tool(self, req: CallRequest, tool: ToolDef) -> Any:
        if not req.approval:
            ruled = approving.asked_before(self, req.step_id, tool)
            if ruled is not None:
                return await approving.gated_tool(self, req, tool, None, ruled)
        entry = self._replayed(req.step_id, tool.name, EntryKind.TOOL)
        done = entry is not None and entry.status == EntryStatus.OK.value
        try:
            text = entry.value or "null" if entry and done else await self._call(req, tool.name)
        except approving.Demanded as d:
            return await approving.gated_tool(self, req, tool, None, d.ruled)
        resolved = self._codec.resolve(text)
        return None if resolved == "null" else tool.decode_result(resolved)

    async def _call(self, req: CallRequest, name: str) -> str:
        while True:
            req.token = self._lease_token()
            try:
                text: str = await workflow.execute_activity(
                    "tether.call", req, result_type=str, **self._options(), **self._heartbeat()
                )
                return text
            except ActivityError as e:
                ruled = approving.demanded(e)
                if ruled is not None:
                    raise ruled from None
                await self._backoff(e, name, req.step_id)

    async def _backoff(self, e: ActivityError | ApplicationError, name: str, sid: str) -> None:
        """A retry backoff longer than the lease parks the run on a durable timer, as on the
        local engine: the activity journaled the failed attempt and handed back the wait; the
        next attempt is the activity delivered again once I2 has journaled the timer's end.
        Any other failure is the workflow's to meet."""
        wait = backoff_wait(e)
        if wait is None:
            raise rebuilt(e, name, sid) from None
        deadline = wait.deadline or _now()
        await self._park(wait, lambda seen: workflow.sleep(max(_AGAIN, deadline - _now())))

    def model(
        self,
        task_class: str,
        messages: Sequence[Message | dict[str, Any]],
        *,
        tools: Sequence[ToolDef | ToolSpec] = (),
        sensitivity: Sensitivity | str = Sensitivity.INTERNAL,
        max_tokens: int = 1024,
        stream: str | None = None,
    ) -> Awaitable[ModelResponse]:
        """As the local context's: with `stream`, the call's activity writes the answer's
        tokens to that run stream as they arrive (runtime/tokens.py, under the run's lease)."""
        if stream is not None and (not isinstance(stream, str) or not stream):
            raise TypeError(f"a stream key is a non-empty string, not {stream!r}")
        request = ModelRequest(
            task_class=task_class,
            messages=[m if isinstance(m, Message) else Message.model_validate(m) for m in messages],
            tools=[
                ToolSpec.model_validate(t.json_schema()) if isinstance(t, ToolDef) else t
                for t in tools
            ],
            sensitivity=Sensitivity(sensitivity),
            max_tokens=max_tokens,
        )
        req = CallRequest(
            run_id=self.run_id,
            token="",
            step_id=self._next_id(),
            request=self._codec.encode(request.model_dump(mode="json")),
            stream=stream or "",
        )
        return self._model(req, task_class)

    async def _model(self, req: CallRequest, task_class: str) -> ModelResponse:
        entry = self._replayed(req.step_id, task_class, EntryKind.MODEL)
        if entry is not None and entry.status == EntryStatus.OK.value and entry.value:
            return ModelResponse.model_validate_json(self._codec.resolve(entry.value))
        text = await self._call(req, task_class)
        return ModelResponse.model_validate_json(self._codec.resolve(text))

    def approval(
        self,
        action: str | Action,
        args: dict[str, Any] | None = None,
        *,
        approvers: Sequence[str],
        expires_in: float | timedelta | None = None,
        on_expire: OnExpire | str = OnExpire.REJECT,
        escalate_to: Sequence[Sequence[str] | str] = (),
        reason: str | None = None,
    ) -> Awaitable[Decision]:
        """As the local context's (runtime/approvals.py): a request in I6 bound to the
        action's arguments hash, and a park in I2 until it is decided or expires."""
        checked = approvals.check_options(approvers, expires_in, on_expire, escalate_to)
        bound = action if isinstance(action, Action) else Action.of(action, args)
        return approving.ask(self, self._next_id(), bound, checked, reason)

    # -- waiting ---------------------------------------------------------------------------

    async def _park(self, wait: Wait, woken: Callable[[int], Awaitable[None]]) -> Parked:
        """Park the run in I2 on `wait` until I2 has its completion: each time Temporal wakes
        the workflow (`woken`, given the wake count from before the park), the lease is taken
        again and I2 asked once more. Parking and completions are I2's, so a parked run's
        status, held events, matching and timeouts are the local engine's."""
        kind = _WAIT_ENTRIES[wait.kind]
        entry = self._replayed(wait.step_id, wait.name, kind)
        if entry is not None:
            return Parked(
                token=self._token, kind=entry.kind, status=entry.status, value=entry.value,
                error=entry.error,
            )  # fmt: skip
        while True:
            if self._token is not None:
                self.check_replay()
                self._continue_if_long()
            seen = self.wakes
            call = WaitCall(run_id=self.run_id, token=self._token, wait=wait)
            out: Parked = await workflow.execute_activity(
                "tether.wait", call, result_type=Parked, **self._options()
            )
            self._token = out.token
            if out.ended:
                raise RunEnded(self.run_id)
            if out.kind is not None:
                self._waited = True
                return out
            await woken(seen)

    async def _woken_by_signal(self, seen: int, deadline: float | None) -> None:
        left = None if deadline is None else max(_AGAIN, deadline - _now())
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: self.wakes > seen, timeout=left)

    def sleep(self, name: str, duration: float | timedelta) -> Awaitable[None]:
        return self._sleep(self._next_id(), name, _seconds(duration))

    async def _sleep(self, sid: str, name: str, seconds: float) -> None:
        if BRANCH.get():  # a gather's branches share one lease: the run stays running
            await workflow.sleep(seconds)
            return
        deadline = _now() + seconds
        wait = Wait(step_id=sid, name=name, kind=WaitKind.TIMER, deadline=deadline)
        await self._park(wait, lambda seen: workflow.sleep(max(_AGAIN, deadline - _now())))

    def wait_for_event(
        self,
        name: str,
        event: str,
        *,
        match: dict[str, Any] | None = None,
        timeout: float | timedelta | None = None,
    ) -> Awaitable[dict[str, Any] | None]:
        if BRANCH.get():
            raise TypeError(
                "ctx.wait_for_event inside ctx.gather is not supported on the temporal engine "
                "(a gather's branches share one I2 lease, which a park gives up); wait before "
                "or after the gather"
            )
        seconds = None if timeout is None else _seconds(timeout)
        return self._wait(self._next_id(), name, event, dict(match or {}), seconds)

    async def _wait(
        self, sid: str, name: str, event: str, match: dict[str, Any], timeout: float | None
    ) -> dict[str, Any] | None:
        deadline = None if timeout is None else _now() + timeout
        wait = Wait(
            step_id=sid, name=name, kind=WaitKind.EVENT, event=event, match=match,
            deadline=deadline,
        )  # fmt: skip
        out = await self._park(wait, lambda seen: self._woken_by_signal(seen, deadline))
        data: dict[str, Any] | None = json.loads(self._codec.resolve(out.value or "null"))
        return data

    # -- children --------------------------------------------------------------------------

    def invoke(
        self,
        workflow_ref: WorkflowDef | str,
        input: BaseModel | dict[str, Any],
        *,
        name: str | None = None,
    ) -> Awaitable[Any]:
        wf = workflow_ref if isinstance(workflow_ref, WorkflowDef) else REGISTRY.get(workflow_ref)
        return self._invoke(self._next_id(), name or wf.name, wf, input)

    async def _invoke(
        self, sid: str, name: str, wf: WorkflowDef, input: BaseModel | dict[str, Any]
    ) -> Any:
        entry = self._replayed(sid, name, EntryKind.INVOKE)
        if entry is not None and entry.status == EntryStatus.ERROR.value:
            raise ChildFailed(entry.ref or "?", json.loads(entry.error or "{}").get("message", ""))
        if entry is not None:
            return self._codec.decode(entry.value or "null", wf.output_adapter)
        self.check_replay()
        self._continue_if_long()
        encoded = self._codec.encode(wf.input_adapter.validate_python(input), wf.input_adapter)
        call = ChildCall(
            parent_id=self.run_id,
            step_id=sid,
            name=name,
            workflow=wf.name,
            version=wf.version,
            input=encoded,
        )
        child_id = await workflow.execute_activity(
            "tether.child", call, result_type=str, start_to_close_timeout=STEP_TIMEOUT
        )
        args = RunArgs(run_id=child_id, workflow=wf.name, version=wf.version, input=encoded)
        child = await workflow.start_child_workflow(
            WORKFLOW_NAME,
            args,
            id=self._binding.execution_id(child_id),
            task_queue=self._binding.queue(wf.name, wf.version),
            # a parent's end cancels the child, which then writes its end in the index
            parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,
            result_type=dict,
        )
        if BRANCH.get():  # no park in a branch: the child's execution answers
            try:
                output = await child
            except ChildWorkflowError as e:
                raise ChildFailed(child_id, str(e.cause or e)) from None
            if output.get("error") is not None:
                raise ChildFailed(child_id, output["error"])
            return self._codec.decode(output.get("output") or "null", wf.output_adapter)
        ended = False

        async def woken(seen: int) -> None:
            nonlocal ended
            if ended:  # its execution closed without writing its end (terminated by hand)
                raise ChildFailed(child_id, "its Temporal execution ended without a result")
            with contextlib.suppress(ChildWorkflowError):
                await child
            ended = True

        wait = Wait(step_id=sid, name=name, kind=WaitKind.CHILD, child_id=child_id)
        out = await self._park(wait, woken)
        if out.status == EntryStatus.ERROR.value:
            raise ChildFailed(child_id, json.loads(out.error or "{}").get("message", ""))
        return self._codec.decode(out.value or "null", wf.output_adapter)

    # -- fan-out ---------------------------------------------------------------------------

    async def gather(self, *branches: Awaitable[Any]) -> list[Any]:
        """Branches run concurrently (their activities too), each under its own branch path
        as on the local engine, so a retried gather finds each branch's steps at the same
        ids; the first failure in argument order is raised once every branch has settled."""
        gid = self._next_id()
        tasks = [start_branch(gid, i, _coroutine(b)) for i, b in enumerate(branches)]
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return list(outcomes)

    # -- values a workflow may branch on ---------------------------------------------------

    def _recorded_value(self, make: Callable[[], Any]) -> Any:
        """Temporal's deterministic value, kept by id so that an execution this run continues
        as gets the same one."""
        sid = self._next_id()
        if sid not in self._recorded:
            self._recorded[sid] = json.dumps(make())
        return json.loads(self._recorded[sid])

    def now(self) -> datetime:
        return datetime.fromisoformat(self._recorded_value(lambda: workflow.now().isoformat()))

    def uuid(self) -> _uuid.UUID:
        return _uuid.UUID(self._recorded_value(lambda: str(workflow.uuid4())))

    def random(self) -> float:
        value: float = self._recorded_value(lambda: workflow.random().random())
        return value


async def _coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable
