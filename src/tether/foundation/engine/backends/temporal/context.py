"""The `ctx` a tether workflow receives on Temporal: the same primitives, each mapped onto
Temporal's own, so a `@workflow` runs unchanged.

    ctx.step              an activity (`tether.step`), the function called by name
    ctx.sleep             a durable timer (workflow.sleep)
    ctx.wait_for_event    a signal (`tether.event`), with tether's match and timeout semantics
    ctx.invoke            a child workflow, its run row in I2 made by an activity
    ctx.gather            concurrent branches in the workflow's own loop
    ctx.now/uuid/random   workflow.now(), workflow.uuid4(), workflow.random()

Temporal's history replays the workflow; steps, tool and model calls are also journaled in
I2 by their activities (see activities.py), which is what `tether inspect` shows. Sleeps,
waits and children are in Temporal's history only. The context does no I/O but the blob
store's, for values over the threshold (content addressed, so a replay reads what the first
execution wrote).
"""

from __future__ import annotations

import asyncio
import uuid as _uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy as TemporalRetry
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError
from temporalio.workflow import ParentClosePolicy

from tether.errors import ChildFailed, StepFailed, ToolFailed
from tether.foundation.engine.backends.temporal.activities import (
    LOCAL_CALLS,
    function_name,
    retry_data,
)
from tether.foundation.engine.backends.temporal.messages import (
    WORKFLOW_NAME,
    CallRequest,
    ChildCall,
    ChildRun,
    Event,
    RunArgs,
    StepCall,
)
from tether.foundation.models.contract import (
    Message,
    ModelRequest,
    ModelResponse,
    Sensitivity,
    ToolSpec,
)
from tether.foundation.tools.contract import ToolDef
from tether.runtime.execution import NeedsAttention
from tether.runtime.registry import REGISTRY, WorkflowDef
from tether.runtime.retry import DEFAULT_RETRY, RetryPolicy
from tether.runtime.values import Codec, return_adapter

T = TypeVar("T")
STEP_TIMEOUT = timedelta(minutes=30)


def _rebuilt(e: ActivityError | ApplicationError, name: str, sid: str) -> BaseException:
    """The tether error an activity failed with, as the workflow's code would have met it on
    the local engine (a local activity's failure arrives as its ApplicationError itself)."""
    cause = e if isinstance(e, ApplicationError) else e.cause
    if not isinstance(cause, ApplicationError):
        failure: BaseException = StepFailed(name, type(cause or e).__name__, str(cause or e))
    else:
        details = list(cause.details)
        if cause.type == "NeedsAttention":
            return NeedsAttention(str(details[0]), str(details[1]))
        if cause.type == "StepFailed":
            failure = StepFailed(name, str(details[0]), str(details[1]))
        elif cause.type == "ToolFailed":
            failure = ToolFailed(str(details[0]), str(details[1]), str(details[2]))
        else:
            failure = StepFailed(name, cause.type or "Error", cause.message)
    failure.step_id = sid  # type: ignore[attr-defined]
    return failure


def _seconds(duration: float | timedelta) -> float:
    return duration.total_seconds() if isinstance(duration, timedelta) else float(duration)


class TemporalContext:
    """What a workflow function receives as `ctx` when Temporal executes it."""

    def __init__(
        self,
        args: RunArgs,
        wf: WorkflowDef,
        codec: Codec,
        queue: Callable[[str, str], str],
        lease_seconds: float,
    ) -> None:
        self._args, self._wf, self._codec, self._queue = args, wf, codec, queue
        self._lease = lease_seconds
        self._seq = 0
        self.events: list[Event] = []
        self.consumed: set[int] = set()

    @property
    def run_id(self) -> str:
        return self._args.run_id

    @property
    def workflow_id(self) -> str:
        return self._wf.id

    def _next_id(self) -> str:
        self._seq += 1
        return str(self._seq)

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
        policy = retry or DEFAULT_RETRY
        call = StepCall(run_id=self.run_id, token=self._args.token, step_id=sid, name=name)
        try:
            call.fn = function_name(fn)
            call.args, call.keywords, call.retry = list(args), kwargs, retry_data(policy)
        except TypeError:
            call.local = f"{self.run_id}/{workflow.info().run_id}/{sid}"
            LOCAL_CALLS[call.local] = (fn, args, kwargs, policy)
        return self._step(call, fn)

    async def _step(self, call: StepCall, fn: Callable[..., Any]) -> Any:
        try:
            if call.local:
                text = await workflow.execute_local_activity(
                    "tether.step", call, result_type=str, **self._options()
                )
            else:
                text = await workflow.execute_activity(
                    "tether.step", call, result_type=str, **self._options(), **self._heartbeat()
                )
        except (ActivityError, ApplicationError) as e:
            raise _rebuilt(e, call.name, call.step_id) from None
        finally:
            LOCAL_CALLS.pop(call.local, None)
        return self._codec.decode(text, return_adapter(fn))

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

    # -- tools and models ------------------------------------------------------------------

    def tool(
        self, tool: ToolDef, /, *, retry: RetryPolicy | None = None, **args: Any
    ) -> Awaitable[Any]:
        if not isinstance(tool, ToolDef):
            raise TypeError(f"ctx.tool takes a @tool-decorated function, not {tool!r}")
        req = CallRequest(
            run_id=self.run_id,
            token=self._args.token,
            step_id=self._next_id(),
            tool=tool.name,
            arguments=args,
            retry=retry_data(retry or DEFAULT_RETRY),
        )
        return self._tool(req, tool)

    async def _tool(self, req: CallRequest, tool: ToolDef) -> Any:
        text = await self._call(req, tool.name)
        resolved = self._codec.resolve(text)
        return None if resolved == "null" else tool.decode_result(resolved)

    async def _call(self, req: CallRequest, name: str) -> str:
        try:
            text: str = await workflow.execute_activity(
                "tether.call", req, result_type=str, **self._options(), **self._heartbeat()
            )
        except ActivityError as e:
            raise _rebuilt(e, name, req.step_id) from None
        return text

    def model(
        self,
        task_class: str,
        messages: Sequence[Message | dict[str, Any]],
        *,
        tools: Sequence[ToolDef | ToolSpec] = (),
        sensitivity: Sensitivity | str = Sensitivity.INTERNAL,
        max_tokens: int = 1024,
    ) -> Awaitable[ModelResponse]:
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
            token=self._args.token,
            step_id=self._next_id(),
            request=request.model_dump_json(),
        )
        return self._model(req, task_class)

    async def _model(self, req: CallRequest, task_class: str) -> ModelResponse:
        text = await self._call(req, task_class)
        return ModelResponse.model_validate_json(self._codec.resolve(text))

    # -- waiting ---------------------------------------------------------------------------

    def sleep(self, name: str, duration: float | timedelta) -> Awaitable[None]:
        return self._sleep(self._next_id(), name, _seconds(duration))

    async def _sleep(self, sid: str, name: str, seconds: float) -> None:
        await workflow.sleep(seconds)

    def wait_for_event(
        self,
        name: str,
        event: str,
        *,
        match: dict[str, Any] | None = None,
        timeout: float | timedelta | None = None,
    ) -> Awaitable[dict[str, Any] | None]:
        seconds = None if timeout is None else _seconds(timeout)
        return self._wait(self._next_id(), name, event, dict(match or {}), seconds)

    def _matching(self, event: str, match: dict[str, Any], since: int) -> int | None:
        """The first unconsumed event the wait takes: one that came while it waited, or one
        sent to this run, or (with a non-empty match) one held from before it began."""
        for i, ev in enumerate(self.events):
            if i in self.consumed or ev.name != event:
                continue
            if any(ev.data.get(k) != v for k, v in match.items()):
                continue
            if i >= since or not ev.held or match:
                return i
        return None

    async def _wait(
        self, sid: str, name: str, event: str, match: dict[str, Any], timeout: float | None
    ) -> dict[str, Any] | None:
        since = len(self.events)
        try:
            await workflow.wait_condition(
                lambda: self._matching(event, match, since) is not None, timeout=timeout
            )
        except TimeoutError:
            return None
        i = self._matching(event, match, since)
        assert i is not None
        self.consumed.add(i)
        return self.events[i].data

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
        encoded = self._codec.encode(wf.input_adapter.validate_python(input), wf.input_adapter)
        call = ChildCall(
            parent_id=self.run_id,
            step_id=sid,
            name=name,
            workflow=wf.name,
            version=wf.version,
            input=encoded,
        )
        child = await workflow.execute_activity(
            "tether.child", call, result_type=ChildRun, start_to_close_timeout=STEP_TIMEOUT
        )
        args = RunArgs(
            run_id=child.run_id,
            workflow=wf.name,
            version=wf.version,
            input=encoded,
            token=child.token,
        )
        try:
            output = await workflow.execute_child_workflow(
                WORKFLOW_NAME,
                args,
                id=child.run_id,
                task_queue=self._queue(wf.name, wf.version),
                # a parent's end cancels the child, which then writes its end in the index
                parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,
                result_type=dict,
            )
        except ChildWorkflowError as e:
            raise ChildFailed(child.run_id, str(e.cause or e)) from None
        if output.get("error") is not None:
            raise ChildFailed(child.run_id, output["error"])
        return self._codec.decode(output.get("output") or "null", wf.output_adapter)

    # -- fan-out ---------------------------------------------------------------------------

    async def gather(self, *branches: Awaitable[Any]) -> list[Any]:
        """Branches run concurrently (their activities too); the first failure in argument
        order is raised once every branch has settled, as on the local engine."""
        self._next_id()
        tasks = [asyncio.ensure_future(_coroutine(b)) for b in branches]
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return list(outcomes)

    # -- values a workflow may branch on ---------------------------------------------------

    def now(self) -> datetime:
        return workflow.now()

    def uuid(self) -> _uuid.UUID:
        return workflow.uuid4()

    def random(self) -> float:
        return workflow.random().random()


async def _coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable
