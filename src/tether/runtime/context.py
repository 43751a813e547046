"""`Context`: the durable primitives a workflow calls.

Every primitive takes its id synchronously when it is *called*, before any await: the id is
the caller's branch path (a contextvar; each gather branch has its own) plus a per-path
sequence number. That is why these methods are plain `def`s returning awaitables: a gather's
branches keep their ids however they interleave, so replay is deterministic.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import random as _random
import time
import uuid as _uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from pydantic import BaseModel, TypeAdapter

from tether.errors import InvalidInput, StepFailed
from tether.foundation.checkpoint.contract import (
    EntryKind,
    EntryStatus,
    NewRun,
    Wait,
    WaitKind,
)
from tether.foundation.hitl.contract import Action, Decision, OnExpire
from tether.foundation.limits.contract import Budget
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
from tether.runtime.calls import call_model, call_tool, root_of
from tether.runtime.execution import Execution, Release, Suspend
from tether.runtime.ids import new_run_id
from tether.runtime.queues import place
from tether.runtime.registry import REGISTRY, WorkflowDef
from tether.runtime.retry import RetryPolicy
from tether.runtime.values import UnserialisableValue, return_adapter

T = TypeVar("T")


def _call_inline(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run a sync step on its run's own thread: nothing else runs on this run's loop (each run
    has its own thread, the heartbeats theirs), so a thread hop would only cost ~50 us a step.
    The loop is hidden while it runs, so the function sees what it would see in a thread: it
    may `asyncio.run` code of its own (as some SDKs' sync wrappers do)."""
    loop = asyncio._get_running_loop()
    asyncio._set_running_loop(None)
    try:
        return fn(*args, **kwargs)
    finally:
        asyncio._set_running_loop(loop)


# What `ctx.step` needs to know of a function, learnt once. Weakly keyed: a workflow that
# passes a fresh lambda or closure every step must not grow the cache for the worker's life.
_SHAPES: WeakKeyDictionary[Callable[..., Any], tuple[TypeAdapter[Any], bool]] = WeakKeyDictionary()


def _shape(fn: Callable[..., Any]) -> tuple[TypeAdapter[Any], bool]:
    """The adapter for `fn`'s result, and whether it is a coroutine function."""
    key = getattr(fn, "__func__", fn)  # a bound method is a new object at every access
    try:
        return _SHAPES[key]
    except KeyError:
        shape = _SHAPES[key] = (return_adapter(fn), inspect.iscoroutinefunction(fn))
        return shape
    except TypeError:  # not weakly referable (a builtin): work it out each time
        return return_adapter(fn), inspect.iscoroutinefunction(fn)


def _seconds(duration: float | timedelta) -> float:
    return duration.total_seconds() if isinstance(duration, timedelta) else float(duration)


class Context:
    """What a workflow function receives as `ctx`."""

    def __init__(self, ex: Execution) -> None:
        self._ex = ex

    @property
    def run_id(self) -> str:
        return self._ex.run.id

    @property
    def workflow_id(self) -> str:
        return self._ex.wf.id

    def _next_id(self) -> str:
        path = BRANCH.get()
        n = self._ex.seq.get(path, 0) + 1
        self._ex.seq[path] = n
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
        """Run `fn(*args, **kwargs)` once and journal its result; on replay return the stored
        result without running it. Sync functions run in a thread. The step should be
        idempotent: if the worker dies before the commit, it runs again."""
        return self._step(self._next_id(), name, fn, args, kwargs, retry)

    async def _step(
        self,
        sid: str,
        name: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        retry: RetryPolicy | None,
    ) -> Any:
        ex = self._ex
        adapter, is_async = _shape(fn)
        entry = ex.replayed(sid, name, EntryKind.STEP)
        if entry is not None:
            if entry.status == EntryStatus.ERROR:
                ex.raise_entry_error(entry)
            return ex.codec.decode(entry.value or "null", adapter)
        ex.check_stopping()
        policy = retry or ex.default_retry
        attempt = ex.attempts.get(sid, 0)
        in_branch = bool(BRANCH.get())
        inputs = ex.codec.encode_args(args, kwargs)
        if 0 < attempt < policy.max_attempts:  # resumed between attempts: a parked backoff
            await ex.backoff(sid, name, attempt, policy, resumed=True)
        ex.commit_recorded()
        while True:
            attempt += 1
            started = time.time()
            try:
                if is_async:
                    result = await fn(*args, **kwargs)
                elif in_branch:  # other branches of this gather go on meanwhile
                    result = await asyncio.to_thread(fn, *args, **kwargs)
                else:
                    result = _call_inline(fn, args, kwargs)
                value = ex.codec.encode(result, adapter)
            except Exception as e:
                final = isinstance(e, UnserialisableValue) or not policy.should_retry(e, attempt)
                entry = ex.entry(
                    sid,
                    EntryKind.STEP,
                    name,
                    attempt=attempt,
                    status=EntryStatus.ERROR if final else EntryStatus.ATTEMPT,
                    error=e,
                    input=inputs,
                    started_at=started,
                )
                await ex.write(entry, in_branch)
                ex.span(entry, **{"error.type": type(e).__name__})
                if final:
                    failure = StepFailed(name, type(e).__name__, str(e))
                    failure.step_id = sid  # type: ignore[attr-defined]
                    raise failure from e
                await ex.backoff(sid, name, attempt, policy)
                ex.check_stopping()
                continue
            entry = ex.entry(
                sid,
                EntryKind.STEP,
                name,
                attempt=attempt,
                value=value,
                input=inputs,
                started_at=started,
            )
            await ex.write(entry, in_branch)
            ex.span(entry)
            return ex.codec.journal_form(result, value, adapter)

    # -- streams ---------------------------------------------------------------------------

    def stream(self, key: str, value: Any) -> Awaitable[int]:
        """Append `value` (anything JSON can hold) to this run's stream `key`, which a caller
        reads live with `Tether.stream` or `tether tail`; returns its offset in the stream.
        Journaled like a step: a value written before a crash is not written again on replay."""
        if not isinstance(key, str) or not key:
            raise TypeError(
                f"a stream key is a non-empty string, not {key!r}: ctx.stream('progress', value)"
            )
        return self._stream(self._next_id(), key, value)

    async def _stream(self, sid: str, key: str, value: Any) -> int:
        ex = self._ex
        entry = ex.replayed(sid, key, EntryKind.STREAM)
        if entry is not None:
            return int(entry.value or 0)
        ex.check_stopping()
        text = ex.codec.encode(value)
        ex.commit_recorded()
        return ex.append_stream(ex.entry(sid, EntryKind.STREAM, key), text)

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
        """Call a registered tool through I1, guarded by I9/I10. Its replay class decides what
        a call interrupted by a crash does: re-run, re-run with the same key, or park the run
        for a person. Bad arguments raise ToolArgumentError before anything runs.

        A tool declared `requires_approval`, or a call an I9 rule demands approval for, first
        asks I6 for these exact arguments (`approval` gives `ctx.approval`'s options:
        approvers, expires_in, on_expire, escalate_to, reason; a rule names its own approvers)
        and runs only with the approval bound to this call; an edited approval's arguments are
        what runs. A rejection raises ApprovalRejected and nothing runs."""
        if not isinstance(tool, ToolDef):
            raise TypeError(f"ctx.tool takes a @tool-decorated function, not {tool!r}")
        policy = retry or self._ex.default_retry
        sid = self._next_id()
        ruled = approvals.demanded_by_policy(self._ex, sid, tool, args)
        if not (tool.requires_approval or approval is not None or ruled):
            return call_tool(self._ex, sid, tool, args, policy)
        options = {"approvers": tool.approvers, **(approval or {}), **ruled}
        reason = options.pop("reason", None)
        checked = approvals.check_options(
            options.pop("approvers"),
            options.pop("expires_in", None),
            options.pop("on_expire", OnExpire.REJECT),
            options.pop("escalate_to", ()),
        )
        if options:
            raise TypeError(f"unknown approval options: {', '.join(options)}")
        action = Action.of(tool.name, tool.validate_args(args))
        return approvals.approved_tool(self, sid, tool, action, checked, reason, policy)

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
        """A durable LLM call through I12: routed by task class and sensitivity, guarded,
        priced and traced. A resumed run gets the journaled response: tokens are paid once.
        With `stream`, the answer's text also goes to the run's stream of that key as it
        arrives; an attempt cut short is followed there by a restart marker (`runtime/tokens`)."""
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
        return call_model(self._ex, self._next_id(), request, stream)

    def secret(self, name: str) -> str:
        """A credential from I7, for a tool argument or a provider. Not journaled: it is read
        again on replay, and from the moment it is read it is struck from every journal entry,
        span, log line and error this process writes."""
        return self._ex.foundations.secrets.get(name).reveal()

    # -- waiting ---------------------------------------------------------------------------

    def sleep(self, name: str, duration: float | timedelta) -> Awaitable[None]:
        """A durable timer: the wake-up time is stored and the run holds no process meanwhile."""
        return self._sleep(self._next_id(), name, _seconds(duration))

    async def _sleep(self, sid: str, name: str, seconds: float) -> None:
        ex = self._ex
        if ex.replayed_wait(sid, name, EntryKind.SLEEP) is not None:
            return
        ex.check_stopping()
        raise ex.suspend(
            Wait(step_id=sid, name=name, kind=WaitKind.TIMER, deadline=time.time() + seconds)
        )

    def wait_for_event(
        self,
        name: str,
        event: str,
        *,
        match: dict[str, Any] | None = None,
        timeout: float | timedelta | None = None,
    ) -> Awaitable[dict[str, Any] | None]:
        """Park until an event named `event` whose data has every `match` field arrives;
        returns its data, or None if `timeout` passes first. `match` is data, not a callable:
        it is stored with the wait and evaluated by the checkpointer."""
        deadline = None if timeout is None else _seconds(timeout)
        return self._wait(self._next_id(), name, event, dict(match or {}), deadline)

    async def _wait(
        self, sid: str, name: str, event: str, match: dict[str, Any], timeout: float | None
    ) -> dict[str, Any] | None:
        ex = self._ex
        entry = ex.replayed_wait(sid, name, EntryKind.EVENT)
        if entry is not None:
            data: dict[str, Any] | None = json.loads(ex.codec.resolve(entry.value or "null"))
            return data
        ex.check_stopping()
        deadline = None if timeout is None else time.time() + timeout
        raise ex.suspend(
            Wait(
                step_id=sid,
                name=name,
                kind=WaitKind.EVENT,
                event=event,
                match=match,
                deadline=deadline,
            )
        )

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
        """Ask a person (I6) to approve `action` (a name, with `args` bound by their hash) and
        park until one of `approvers` (identities or `role:<name>`) decides. After
        `expires_in` the request takes its `on_expire` path: reject, approve, or escalate to
        the next group of `escalate_to` with a new deadline, each audited. Returns the
        decision (approved / rejected / edited, by whom, when, why); a resumed run replays it.
        Bad options raise ApprovalError before anything is written."""
        checked = approvals.check_options(approvers, expires_in, on_expire, escalate_to)
        bound = action if isinstance(action, Action) else Action.of(action, args)
        return approvals.ask(self, self._next_id(), bound, *checked, reason)

    # -- children --------------------------------------------------------------------------

    def invoke(
        self,
        workflow: WorkflowDef | str,
        input: BaseModel | dict[str, Any],
        *,
        name: str | None = None,
        budget: Budget | None = None,
    ) -> Awaitable[Any]:
        """Start a child workflow with its own journal and wait for its output.
        A child failure raises ChildFailed here; cancelling this run cancels the child.

        The child spends from this run's budget, which is its root's: every run of a tree
        counts against the root's call cap, cost cap and loop window. `budget` narrows what the
        child (and its descendants) may spend; one larger than a budget above it is refused
        (InvalidInput)."""
        wf = workflow if isinstance(workflow, WorkflowDef) else REGISTRY.get(workflow)
        sub_budgets = self._sub_budgets(budget)
        return self._invoke(self._next_id(), name or wf.name, wf, input, sub_budgets)

    def _sub_budgets(self, budget: Budget | None) -> list[dict[str, Any]]:
        """This run's sub-budgets, and the child's when it is given one (its run id is filled
        in when the child is created)."""
        above: list[dict[str, Any]] = list(self._ex.run.meta.get("budgets", ()))
        if budget is None:
            return above
        for cap in ("model_call_cap", "cost_cap_usd"):
            mine = getattr(budget, cap)
            wider = [b for b in above if b.get(cap) is not None and mine is not None]
            if mine is not None and any(mine > b[cap] for b in wider):
                raise InvalidInput(
                    "ctx.invoke budget",
                    f"{cap}={mine} is larger than the {cap} of run {wider[-1]['run_id']} "
                    "above it; a child's budget may only be smaller",
                )
        return [*above, {"run_id": "", **budget.model_dump()}]

    async def _invoke(
        self,
        sid: str,
        name: str,
        wf: WorkflowDef,
        input: BaseModel | dict[str, Any],
        sub_budgets: list[dict[str, Any]],
    ) -> Any:
        ex = self._ex
        entry = ex.replayed_wait(sid, name, EntryKind.INVOKE)
        if entry is not None:
            if entry.status == EntryStatus.ERROR:
                ex.raise_entry_error(entry)
            return ex.codec.decode(entry.value or "null", wf.output_adapter)
        ex.check_stopping()
        child_value = wf.input_adapter.validate_python(input)
        child_input = ex.codec.encode(child_value, wf.input_adapter)
        placed = place(REGISTRY, wf, child_value)
        ex.commit_recorded()
        child_id = new_run_id()
        root, root_workflow = root_of(ex)
        budgets = [b if b["run_id"] else {**b, "run_id": child_id} for b in sub_budgets]
        meta: dict[str, Any] = {"step_name": name, "root_id": root, "root_workflow": root_workflow}
        if budgets:
            meta["budgets"] = budgets
        child, _ = ex.cp.create_run(
            NewRun(
                id=child_id,
                workflow=wf.name,
                version=wf.version,
                input=child_input,
                key=f"child:{ex.run.id}:{sid}",
                parent_id=ex.run.id,
                parent_step=sid,
                meta=meta,
                queue=placed.queue,
                queue_key=placed.key,
            )
        )
        raise ex.suspend(Wait(step_id=sid, name=name, kind=WaitKind.CHILD, child_id=child.id))

    # -- fan-out ---------------------------------------------------------------------------

    async def gather(self, *branches: Awaitable[Any]) -> list[Any]:
        """Run branches concurrently and return their results in order. Each branch has its
        own id path, so the primitives inside keep their ids however they interleave. If any
        branch fails, the first failure (in argument order) is raised after every branch has
        settled; results of the others stay journaled."""
        gid = self._next_id()
        tasks = [start_branch(gid, i, branch) for i, branch in enumerate(branches)]
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        suspended: BaseException | None = None
        failure: BaseException | None = None
        for outcome in outcomes:
            if not isinstance(outcome, BaseException):
                continue
            if isinstance(outcome, Suspend):
                suspended = suspended or outcome
            elif not isinstance(outcome, Exception) or isinstance(outcome, Release):
                raise outcome  # lease lost, cancel, shutdown: nothing else matters
            else:
                failure = failure or outcome
        if failure is not None:
            self._ex.gather_span(gid, len(tasks), failed=True)
            raise failure
        if suspended is not None:
            raise suspended
        self._ex.gather_span(gid, len(tasks), failed=False)
        return list(outcomes)

    # -- values a workflow may branch on ---------------------------------------------------

    def _recorded(self, name: str, kind: EntryKind, make: Callable[[], Any]) -> Any:
        ex = self._ex
        sid = self._next_id()
        entry = ex.replayed(sid, name, kind)
        if entry is not None:
            return json.loads(entry.value or "null")
        value = make()
        ex.buffer(ex.entry(sid, kind, name, value=json.dumps(value)))
        return value

    def now(self) -> datetime:
        """The current time, recorded on first call and replayed after."""
        iso = self._recorded("now", EntryKind.NOW, lambda: datetime.now(UTC).isoformat())
        return datetime.fromisoformat(iso)

    def uuid(self) -> _uuid.UUID:
        """A random UUID, recorded on first call and replayed after (safe as an idempotency key)."""
        return _uuid.UUID(self._recorded("uuid", EntryKind.UUID, lambda: str(_uuid.uuid4())))

    def random(self) -> float:
        """A float in [0, 1), recorded on first call and replayed after."""
        value: float = self._recorded("random", EntryKind.RANDOM, _random.random)
        return value
