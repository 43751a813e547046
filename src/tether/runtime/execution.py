"""One claimed run being executed: its journal in memory, the write path, and its spans.

`Execution` is what the primitives (`Context`, `calls`) work on: they ask it for the journaled
entry at a step id, and write new entries through it (one commit each, or one per loop tick
for a gather's branches). The signals that unwind a workflow function (`Suspend`, `Abandon`,
...) are defined here; `driver` catches them and settles the run.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from tether.errors import (
    ChildFailed,
    ConfigurationError,
    ModelError,
    NonDeterminismError,
    StepFailed,
    TetherError,
)
from tether.foundation.checkpoint.contract import (
    Checkpointer,
    Claim,
    EntryKind,
    EntryStatus,
    JournalEntry,
    LeaseLost,
    RunStatus,
    Wait,
    WaitKind,
)
from tether.foundation.trace.contract import Span, SpanEvent, TraceSink, span_id_for
from tether.foundation.trace.memory import NullTraceSink
from tether.runtime.branches import BRANCH
from tether.runtime.redacting import Appender, RedactingCheckpointer, clean_attributes
from tether.runtime.registry import WorkflowDef
from tether.runtime.retry import DEFAULT_RETRY, RetryPolicy
from tether.runtime.span_tree import called_at, gather_span_id, parent_span, run_trace
from tether.runtime.values import Codec

if TYPE_CHECKING:
    from tether.runtime.foundations import Foundations

# Spans are queued, then built and emitted together when SPAN_BATCH are queued or the oldest
# is SPAN_DELAY seconds old (checked as each span is queued), and whenever an execution stops.
SPAN_BATCH = 256
SPAN_DELAY = 1.0


class Suspend(BaseException):
    """Unwinds the workflow function so the run can park; never seen by user code."""


class Abandon(BaseException):
    """Our lease is gone (another worker has the run): stop without writing anything."""


class CancelRequested(BaseException):
    """A cancel arrived while the run was executing: stop at this primitive."""


class Release(BaseException):
    """The worker is shutting down: give the run back at this primitive boundary."""


class NeedsAttention(BaseException):
    """An interrupted unsafe_on_replay call: park the run for a person, with the evidence."""

    def __init__(self, step_id: str, evidence: str) -> None:
        super().__init__(step_id)
        self.step_id, self.evidence = step_id, evidence


class Execution:
    """State of one run during one claim. Not thread-safe: one event loop drives it."""

    def __init__(
        self,
        claim: Claim,
        wf: WorkflowDef,
        cp: Checkpointer,
        codec: Codec,
        sink: TraceSink,
        *,
        default_retry: RetryPolicy = DEFAULT_RETRY,
        stopping: threading.Event | None = None,
        foundations: Foundations | None = None,
        lease: Callable[[], float | None] | None = None,
        lease_seconds: float = math.inf,
        commits: Appender | None = None,
    ) -> None:
        self.run = claim.run
        self.token = claim.token
        self.wf = wf
        self.cp = RedactingCheckpointer(cp, commits)
        self.codec = codec
        self.sink = sink
        self.default_retry = default_retry
        self.lease_seconds = lease_seconds
        self.stopping = stopping or threading.Event()
        self._lease = lease  # when to stop acting for the run (time.monotonic()), if known
        self._foundations = foundations
        self._untraced = isinstance(sink, NullTraceSink)  # `trace = "none"`: build no spans
        self.done: dict[str, JournalEntry] = {}
        self.attempts: dict[str, int] = {}
        for entry in claim.journal:
            self.learn(entry)
        # spans held until this execution's next commit (see `hold`): first, those of waits
        # completed since the last execution that committed anything
        self._held: list[JournalEntry | Span] = (
            [] if self._untraced else _delivered_since_last_commit(claim.journal)
        )
        self._held_ids = {e.step_id for e in self._held if isinstance(e, JournalEntry)}
        self._held_paths: dict[str, str] = {}  # held entry -> the branch it was replayed in
        self._gathers: dict[str, _GatherNews] = {}  # what this execution saw under each gather
        self._gather_starts: dict[str, float] = {}  # the earliest start seen in its branches
        self.pending: list[JournalEntry] = []
        self.waits: list[Wait] = []
        self.seq: dict[str, int] = {}
        self.trace_id, self.run_span, self._run_parent = run_trace(self.run)
        self._batch: list[JournalEntry] = []
        self._spans: list[tuple[JournalEntry, dict[str, Any], Sequence[SpanEvent], str]] = []
        self._flush: asyncio.Future[None] | None = None

    @property
    def foundations(self) -> Foundations:
        if self._foundations is None:
            raise ConfigurationError(
                "this execution has no tool/model foundations; run it through Tether or a worker"
            )
        return self._foundations

    @property
    def has_foundations(self) -> bool:
        return self._foundations is not None

    def learn(self, entry: JournalEntry) -> None:
        if entry.status == EntryStatus.ATTEMPT:
            self.attempts[entry.step_id] = max(self.attempts.get(entry.step_id, 0), entry.attempt)
        else:
            self.done[entry.step_id] = entry
            self.attempts[entry.step_id] = max(self.attempts.get(entry.step_id, 0), entry.attempt)

    # -- the journal ----------------------------------------------------------------------

    def replayed(self, step_id: str, name: str, kind: EntryKind) -> JournalEntry | None:
        """The journaled entry at this id, after checking it is the same primitive."""
        entry = self.done.get(step_id)
        if entry is not None:
            if entry.name != name or entry.kind != kind:
                raise NonDeterminismError(step_id, f"{entry.kind} {entry.name}", f"{kind} {name}")
            path = BRANCH.get()
            if path and kind not in _PARKED_KINDS and not self._untraced:
                self._gathers_started(path, entry.started_at)
        return entry

    def replayed_wait(self, step_id: str, name: str, kind: EntryKind) -> JournalEntry | None:
        """As `replayed`, for a sleep, event or child result. Their spans are `hold`'s; one
        still held is news for the gathers of the branch that reads it."""
        entry = self.replayed(step_id, name, kind)
        if entry is not None and step_id in self._held_ids and step_id not in self._held_paths:
            path = self._held_paths[step_id] = BRANCH.get()
            if path:
                self._news(path, entry, held=True)
        return entry

    def entry(
        self,
        step_id: str,
        kind: EntryKind,
        name: str,
        *,
        attempt: int = 1,
        status: EntryStatus = EntryStatus.OK,
        value: str | None = None,
        error: BaseException | None = None,
        input: str | None = None,
        started_at: float | None = None,
    ) -> JournalEntry:
        """A journal entry of this run, finished now. Built with positional arguments: a
        dataclass's `__init__` matches twelve keywords in ~0.5 µs, more than it takes to build."""
        now = time.time()
        return JournalEntry(
            self.run.id,
            step_id,
            kind,
            name,
            attempt,
            status,
            value,
            None if error is None else self.error_json(error),
            input,
            None,  # ref
            now if started_at is None else started_at,
            now,  # finished_at
        )

    def check_stopping(self) -> None:
        """Before a primitive starts: not on shutdown (the run is released), nor once the lease
        may have lapsed unrenewed (this process was frozen, say): another worker may hold the
        run and have committed this very step, which must not run again."""
        if self.stopping.is_set():
            raise Release()
        until = None if self._lease is None else self._lease()
        if until is not None and time.monotonic() >= until:
            raise Abandon()

    def write_now(self, entries: list[JournalEntry]) -> None:
        """Commit entries (with any buffered now/uuid/random values) before going on."""
        batch = [*self.pending, *entries] if self.pending else entries
        try:
            self.cp.append(self.run.id, self.token, batch)
        except LeaseLost as e:
            raise (CancelRequested() if e.cancel_requested else Abandon()) from None
        if self.pending:
            self.pending = []
        if self._held:
            self.committed()
        for entry in entries:
            self.learn(entry)

    def append_stream(self, entry: JournalEntry, value: str) -> int:
        """Append a value to one of the run's streams, journaled by `entry` in the same commit."""
        try:
            offset = self.cp.append_stream(self.run.id, self.token, entry.name, value, entry)
        except LeaseLost as e:
            raise (CancelRequested() if e.cancel_requested else Abandon()) from None
        if self._held:
            self.committed()
        self.learn(replace(entry, value=str(offset)))
        return offset

    async def write(self, entry: JournalEntry, in_branch: bool) -> None:
        """Commit one entry. Inside a gather, entries of branches that finish in the same
        loop tick share one commit (group commit); at the top level there is nothing to wait for."""
        if not in_branch:
            self.write_now([entry])
            return
        self._batch.append(entry)
        if self._flush is not None:
            await self._flush
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._flush = fut
        await asyncio.sleep(0)  # siblings that finished in this tick join the batch
        batch, self._batch, self._flush = self._batch, [], None
        try:
            self.write_now(batch)
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()  # the leader re-raises; followers get it by awaiting
            raise
        fut.set_result(None)

    def buffer(self, entry: JournalEntry) -> None:
        """now/uuid/random: held until the next primitive executes (`commit_recorded`), or
        written with the next park or finish, so a run that records many values pays one
        commit for them, not one each."""
        self.pending.append(entry)
        self.done[entry.step_id] = entry

    def commit_recorded(self) -> None:
        """Commit buffered now/uuid/random values before a step's function is called, a tool
        or model call is dispatched or a child started: a key minted from them must be the
        same key when a crash in the middle of that primitive makes it run again."""
        if self.pending:
            self.write_now([])

    async def backoff(
        self, sid: str, name: str, attempt: int, policy: RetryPolicy, *, resumed: bool = False
    ) -> None:
        """Wait before attempt `attempt + 1` of the step at `sid`. A backoff that may outlast
        the policy's `park_after` (default: the lease) is a durable timer, as `ctx.sleep` is:
        the run parks and its worker is free, and the timer's end is journaled at `SID~N`, so an
        execution that resumes the run waits out what is left of it, never the whole backoff
        again. A shorter one sleeps on the run's thread, and is not waited again on resume."""
        limit = self.lease_seconds if policy.park_after is None else policy.park_after
        if policy.ceiling(attempt) <= limit:
            if not resumed:
                await asyncio.sleep(policy.delay(attempt))
            return
        wid, what = f"{sid}~{attempt}", f"{name} backoff"
        if self.replayed_wait(wid, what, EntryKind.SLEEP) is not None:
            return
        self.check_stopping()
        deadline = time.time() + policy.delay(attempt)  # a re-park keeps the first deadline
        raise self.suspend(Wait(step_id=wid, name=what, kind=WaitKind.TIMER, deadline=deadline))

    def suspend(self, wait: Wait) -> Suspend:
        self.waits.append(wait)
        return Suspend()

    # -- values ---------------------------------------------------------------------------

    def error_json(self, error: BaseException) -> str:
        if isinstance(error, StepFailed):
            return json.dumps({"type": error.error_type, "message": error.message})
        return json.dumps({"type": type(error).__name__, "message": str(error)})

    def raise_entry_error(self, entry: JournalEntry) -> None:
        data = json.loads(entry.error or "{}")
        if entry.kind == EntryKind.INVOKE:
            err: TetherError = ChildFailed(entry.ref or "?", data.get("message", ""))
        elif entry.kind in (EntryKind.MODEL, EntryKind.TOOL):
            err = _same_error(data, entry)
        else:
            err = StepFailed(entry.name, data.get("type", "Error"), data.get("message", ""))
        err.step_id = entry.step_id  # type: ignore[attr-defined]
        raise err

    # -- spans ----------------------------------------------------------------------------

    def span(
        self, entry: JournalEntry, events: Sequence[SpanEvent] = (), /, **attributes: Any
    ) -> None:
        """Queue the span of a committed entry. Building a span costs some microseconds,
        which in a tight loop of spans are a third of what they cost between two fsyncs."""
        if self._untraced:
            return
        path = BRANCH.get()
        if path:
            self._news(path, entry, held=False)
        self._queue(entry, attributes, events, path)

    def _queue(
        self,
        entry: JournalEntry,
        attributes: dict[str, Any],
        events: Sequence[SpanEvent],
        path: str,
    ) -> None:
        self._spans.append((entry, attributes, events, path))
        if (
            len(self._spans) >= SPAN_BATCH
            or entry.finished_at - self._spans[0][0].finished_at >= SPAN_DELAY
        ):
            self.emit_spans()

    def hold(self, item: JournalEntry | Span) -> None:
        """Keep a span back until this execution next commits an entry of its own.

        A wait's completion (a timer, an event, a child's result) is journaled by the
        checkpointer, not by an execution, so nothing in the journal says whether an earlier
        execution already emitted its span: only that some execution committed after it
        (`_delivered_since_last_commit`). Its span is therefore emitted with this execution's
        next commit, which is what tells every later claim it is done; an execution that parks
        again without committing emits nothing, and the next claim finds the same completion
        still unspanned. A gather whose only news is such a completion is held the same way."""
        if not self._untraced:
            self._held.append(item)
            if isinstance(item, JournalEntry):
                self._held_ids.add(item.step_id)

    def committed(self) -> None:
        """This execution committed an entry: spans held until now are safe to emit."""
        held, self._held, self._held_ids = self._held, [], set()
        for item in held:
            if isinstance(item, Span):
                self.sink.emit(item)
            else:
                self._queue(item, {}, (), self._held_paths.get(item.step_id, ""))

    def _news(self, path: str, entry: JournalEntry, held: bool) -> None:
        """`entry` is news to every gather enclosing branch `path`. Tracked by the branch
        that ran it, not by its step id, since a primitive passed to gather directly
        (`ctx.gather(ctx.step(...), ...)`) took its id before the gather took its own."""
        for gather in _gathers_of(path):
            news = self._gathers.get(gather)
            if news is None:
                news = self._gathers[gather] = _GatherNews()
            news.end = max(news.end, entry.finished_at)
            if held:
                news.held.add(entry.step_id)
        if entry.kind not in _PARKED_KINDS:
            self._gathers_started(path, entry.started_at)

    def _gathers_started(self, path: str, started: float) -> None:
        """A primitive in branch `path` started at `started`: its gathers began no later.
        Replayed ones count too, since a gather's span may be emitted by a later execution."""
        for gather in _gathers_of(path):
            if started < self._gather_starts.get(gather, math.inf):
                self._gather_starts[gather] = started

    def emit_spans(self) -> None:
        spans, self._spans = self._spans, []
        for entry, attributes, events, path in spans:
            self._emit_span(entry, attributes, events, path)

    def _emit_span(
        self,
        entry: JournalEntry,
        attributes: dict[str, Any],
        events: Sequence[SpanEvent],
        path: str,
    ) -> None:
        # the entry's input and result (JSON, or a blob reference) are what a trace UI shows
        # as the call's input and output
        if entry.input is not None:
            attributes["tether.step.input"] = entry.input
        if entry.value is not None:
            attributes["tether.step.output"] = entry.value
        started = entry.started_at
        if entry.kind in _PARKED_KINDS:  # journaled at delivery: the span starts at the park
            started = called_at(self.done, entry.step_id, self.run.created_at)
        self.sink.emit(
            Span(  # positional, as `entry` builds its entry: keywords cost more than the build
                self.trace_id,
                span_id_for(self.run.id, entry.step_id, str(entry.attempt)),
                f"{entry.kind} {entry.name}",
                int(started * 1e9),
                int(entry.finished_at * 1e9),
                parent_span(self.run.id, path or entry.step_id, self.run_span),
                "internal",
                "ok" if entry.status == EntryStatus.OK else "error",
                clean_attributes(
                    {
                        "tether.run.id": self.run.id,
                        "tether.workflow": self.wf.id,
                        "tether.step.id": entry.step_id,
                        "tether.step.attempt": entry.attempt,
                        **attributes,
                    }
                ),
                [SpanEvent(e.name, e.time_ns, clean_attributes(e.attributes)) for e in events]
                if events
                else [],
            )
        )

    def gather_span(self, gather_id: str, branches: int, failed: bool) -> None:
        """The span of a gather that settled in this execution, from its call to its last
        branch's end. Emitted only when this execution journaled or received something in
        its branches: a gather replayed whole from the journal had its span from an earlier
        execution. One settled by a wait's completion still held is held with it (`hold`)."""
        news = self._gathers.pop(gather_id, None)
        first = self._gather_starts.pop(gather_id, math.inf)
        if self._untraced or news is None:
            return
        out = self.hold if news.held & self._held_ids else self.sink.emit
        self.emit_spans()  # its children's spans first, so a sink sees the tree in order
        called = called_at(self.done, gather_id, self.run.created_at)
        started = min(called, first)
        out(
            Span(
                trace_id=self.trace_id,
                span_id=gather_span_id(self.run.id, gather_id),
                parent_span_id=parent_span(self.run.id, BRANCH.get() or gather_id, self.run_span),
                name="gather",
                start_ns=int(started * 1e9),
                end_ns=int(news.end * 1e9),
                status="error" if failed else "ok",
                attributes={
                    "tether.run.id": self.run.id,
                    "tether.workflow": self.wf.id,
                    "tether.step.id": gather_id,
                    "tether.gather.branches": branches,
                },
            )
        )

    def run_span_emit(self, status: RunStatus, error: str | None = None) -> None:
        now = time.time()
        self.committed()  # the run's end is committed: nothing of it will be claimed again
        self.emit_spans()
        attrs: dict[str, Any] = {
            "tether.run.id": self.run.id,
            "tether.workflow": self.wf.id,
            "tether.run.status": status.value,
        }
        if error:
            attrs["error.message"] = error
        self.sink.emit(
            Span(
                trace_id=self.trace_id,
                span_id=self.run_span,
                parent_span_id=self._run_parent,
                name=f"run {self.wf.name}",
                kind="server",
                start_ns=int(self.run.created_at * 1e9),
                end_ns=int(now * 1e9),
                status="ok" if status is RunStatus.COMPLETED else "error",
                attributes=clean_attributes(attrs),
            )
        )


_WAIT_KINDS = (EntryKind.SLEEP, EntryKind.EVENT, EntryKind.INVOKE)
_PARKED_KINDS = (EntryKind.SLEEP, EntryKind.EVENT)


class _GatherNews:
    """What one execution journaled or received in a gather's branches."""

    __slots__ = ("end", "held")

    def __init__(self) -> None:
        self.end = 0.0
        self.held: set[str] = set()  # wait completions among them, held until a commit


def _gathers_of(path: str) -> list[str]:
    """The gathers enclosing branch `path`: `3.0/5.1/` is in gathers 3 and 3.0/5."""
    parts = path.rstrip("/").split("/")
    return ["/".join(parts[:depth]).rpartition(".")[0] for depth in range(1, len(parts) + 1)]


def _delivered_since_last_commit(journal: list[JournalEntry]) -> list[JournalEntry | Span]:
    """Wait completions newer than anything an execution wrote: no execution has committed
    since they were journaled, so none emitted their spans (see `Execution.hold`)."""
    written = [e.finished_at for e in journal if e.kind not in _WAIT_KINDS]
    horizon = max(written, default=0.0)
    return [e for e in journal if e.kind in _WAIT_KINDS and e.finished_at > horizon]


def _same_error(data: dict[str, Any], entry: JournalEntry) -> TetherError:
    """A tool or model call's journaled failure as the class the first execution raised
    (PolicyDenied, ToolFailed, ModelError...), so a workflow that catches it behaves the same
    on replay. Only tether's own classes are rebuilt; anything else comes back as StepFailed."""
    import tether.errors as errors

    cls = getattr(errors, str(data.get("type")), None)
    message = str(data.get("message", ""))
    if isinstance(cls, type) and issubclass(cls, TetherError):
        err: TetherError = cls.__new__(cls)
        Exception.__init__(err, message)
        return err
    if entry.kind == EntryKind.MODEL:
        return ModelError(f"{data.get('type', 'Error')}: {message}")
    return StepFailed(entry.name, str(data.get("type", "Error")), message)
