"""I2 Checkpointer: the only place run state and journals live.

The runtime speaks to it in intents (create a run, claim runs, append journal entries, park on
waits, complete, cancel, send an event) and never in SQL. Every write that belongs to an
execution carries the lease token the claim handed out and is checked in the same statement,
so a worker that lost its lease cannot write over the worker that took the run over.

Values (inputs, outputs, step results, event data) cross this boundary as JSON text; the
runtime owns encoding, and swaps values over the blob threshold for a `{"$blob": hash}` ref.
Timestamps are float seconds since the epoch, taken from the database's clock where it has
one (PostgreSQL `now()`), else from the host's (SQLite lives on the host).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from tether.foundation.checkpoint.queues import Queue, QueueState
from tether.foundation.checkpoint.starts import Debounce, Throttle

if TYPE_CHECKING:
    from tether.settings import Settings


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SLEEPING = "sleeping"
    WAITING = "waiting"
    PAUSED = "paused"
    NEEDS_ATTENTION = "needs_attention"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})


class EntryKind(StrEnum):
    STEP = "step"
    SLEEP = "sleep"
    EVENT = "event"
    INVOKE = "invoke"
    GATHER = "gather"
    NOW = "now"
    UUID = "uuid"
    RANDOM = "random"
    TOOL = "tool"
    MODEL = "model"
    STREAM = "stream"  # a value appended to one of the run's streams; `value` is its offset


class EntryStatus(StrEnum):
    OK = "ok"  # the primitive's result; replays return it
    ERROR = "error"  # the primitive failed for good; replays raise it
    ATTEMPT = "attempt"  # one failed attempt of a step that may be retried


@dataclass(slots=True)
class JournalEntry:
    """One row of a run's journal: (run, step id, attempt) is unique.

    A plain dataclass, not a pydantic model: one is built for every step and read back by the
    thousand on resume, always from values the runtime or a backend already typed. It is
    treated as immutable; copy it with `dataclasses.replace` (a frozen dataclass builds no
    faster than a validated model)."""

    run_id: str
    step_id: str
    kind: EntryKind
    name: str
    attempt: int = 1
    status: EntryStatus = EntryStatus.OK
    value: str | None = None  # JSON text of the result
    error: str | None = None  # JSON text: {"type": ..., "message": ...}
    input: str | None = None  # JSON text of the arguments, for inspection
    ref: str | None = None  # the consumed event's id, or the invoked child's run id
    started_at: float = 0.0
    finished_at: float = 0.0


@dataclass(slots=True, frozen=True)
class Append:
    """One run's part of a shared commit (`append_many`): its entries, under its lease, and
    with `output` set, its completion (as `complete` would make it) in the same commit."""

    run_id: str
    token: str
    entries: Sequence[JournalEntry]
    output: str | None = None


@dataclass(slots=True, frozen=True)
class StreamItem:
    """One value of a run's named stream. `offset` counts from 0 per (run, key) with no gaps;
    `attempt` is the claim of the run that wrote it (a reader can tell a restarted attempt's
    values apart); `value` is JSON text."""

    run_id: str
    key: str
    offset: int
    value: str
    attempt: int
    written_at: float


def restart_marker(begun_at: int) -> str:
    """The stream value that follows the tokens of an interrupted model call: a reader drops
    the values from offset `begun_at` up to it. Tokens are JSON strings, so no token is one."""
    return json.dumps({"$restart": begun_at})


RESTART_PREFIX = '{"$restart": '


@dataclass(slots=True, frozen=True)
class StreamPage:
    """What `read_stream` found: the values from the offset asked for, in order, and whether
    the stream is closed (its run had finished before the read, so nothing will follow)."""

    items: list[StreamItem]
    closed: bool


class NewRun(BaseModel):
    id: str
    workflow: str
    version: str
    input: str
    key: str | None = None
    parent_id: str | None = None
    parent_step: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)
    queue: str | None = None
    queue_key: str | None = None  # the concurrency key within the queue
    priority: int = 0  # within its queue, higher is claimed first
    debounce: Debounce | None = None  # fold into the pending run of its key, started later
    throttle: Throttle | None = None  # start no sooner than its key's rate allows


class RunRecord(BaseModel):
    id: str
    workflow: str
    version: str
    status: RunStatus
    input: str
    output: str | None = None
    error: str | None = None  # JSON text: {"type", "message", "step"}
    failed_step: str | None = None
    key: str | None = None
    parent_id: str | None = None
    parent_step: str | None = None
    created_at: float
    updated_at: float
    wake_at: float | None = None
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    cancel_requested: bool = False
    claims: int = 0
    meta: dict[str, Any] = Field(default_factory=dict)
    queue: str | None = None
    queue_key: str | None = None
    priority: int = 0
    start_at: float | None = None  # a debounced or throttled run is not claimed before it

    @property
    def workflow_id(self) -> str:
        return f"{self.workflow}@{self.version}"


class WaitKind(StrEnum):
    TIMER = "timer"
    EVENT = "event"
    CHILD = "child"


class Wait(BaseModel):
    """One thing a parked run waits for. A run may wait on several at once (a gather)."""

    step_id: str
    name: str
    kind: WaitKind
    deadline: float | None = None  # kept from the first park of this step: timers don't drift
    event: str | None = None
    match: dict[str, Any] = Field(default_factory=dict)
    child_id: str | None = None


class Accept(BaseModel):
    """A workflow a worker can run: a name and a version glob (`1.2.0`, `1.2.*`)."""

    model_config = ConfigDict(frozen=True)

    workflow: str
    version: str


class Claim(BaseModel):
    run: RunRecord
    token: str
    journal: list[JournalEntry]


class RunFilter(BaseModel):
    """Which runs `list_runs` returns, newest first. `before` is a cursor, the (created_at, id)
    of the last run of the previous page: a page is one index range scan, never an offset or a
    count. `stranded` keeps unfinished runs that no live worker hosts (see `record_worker`)."""

    statuses: list[RunStatus] = Field(default_factory=list)
    workflow: str | None = None
    version: str | None = None
    parent_id: str | None = None
    finished_before: float | None = None
    created_after: float | None = None
    created_before: float | None = None
    before: tuple[float, str] | None = None
    stranded: bool = False
    limit: int = 100


class Hosted(BaseModel):
    """A workflow version a worker runs, and the version globs its `resumes=` covers: what a
    worker records with its heartbeats, so whether a run is stranded is read from the
    database, not from whichever process asks."""

    model_config = ConfigDict(frozen=True)

    workflow: str
    version: str
    resumes: tuple[str, ...] = ()


class Resumer(BaseModel):
    """A version some worker recorded as able to run a run; `live` while a worker hosting it
    still heartbeats."""

    model_config = ConfigDict(frozen=True)

    version: str
    live: bool


class Schedule(BaseModel):
    """A cron schedule that starts runs. `next_at` is the next tick to fire; workers advance it
    with a compare-and-set, and each tick's run has the idempotency key `schedule:NAME:TICK`,
    so a tick fires once however many workers see it."""

    name: str
    cron: str
    workflow: str  # NAME (its highest version when the tick fires) or NAME@X.Y.Z
    input: str = "{}"  # JSON
    catchup: str = "skip"  # what ticks missed while no worker ran do: skip | once
    next_at: float
    created_at: float = 0.0


class Pruned(BaseModel):
    run_ids: list[str]
    entries: int
    events: int


class EventReceipt(BaseModel):
    event_id: int
    woken: list[str]


class LeaseLost(Exception):
    """The run's lease is no longer ours: another worker claimed it, or a cancel is pending."""

    def __init__(self, run_id: str, cancel_requested: bool = False) -> None:
        super().__init__(
            f"lease on run {run_id} lost" + (" (cancel requested)" if cancel_requested else "")
        )
        self.run_id, self.cancel_requested = run_id, cancel_requested


@runtime_checkable
class Checkpointer(Protocol):
    """What the runtime needs from run storage. Backends: memory, sqlite, postgres."""

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> Self:
        """How `tether.foundation.loader` builds it: from the settings (its database URL, the
        data directory) and the options of its table in tether.toml, where it has one."""
        ...

    def create_run(self, new: NewRun) -> tuple[RunRecord, bool]:
        """Insert a pending run; with a key already used, return that run and False. With a
        `debounce`, a pending run of its key not yet claimed takes the new input and a later
        `start_at` instead (returned with False); with a `throttle`, `start_at` is the first
        time its key's rate allows (`starts.py`)."""
        ...

    def fork_run(self, new: NewRun, entries: Sequence[JournalEntry]) -> RunRecord:
        """Insert a pending run that starts with `entries` as its journal (a fork: entries of
        the run it came from, their run_id this one's), in one transaction."""
        ...

    def get_run(self, run_id: str) -> RunRecord:
        """The run, or RunNotFound."""
        ...

    def list_runs(self, filter: RunFilter) -> list[RunRecord]:
        """Runs matching the filter, newest first."""
        ...

    def journal(self, run_id: str) -> list[JournalEntry]:
        """Every journal entry of the run in write order."""
        ...

    def journal_at(self, run_id: str, step_id: str) -> list[JournalEntry]:
        """The run's journal rows of one step in write order: its failed attempts, the timers
        its backoffs parked on (at `STEP~N`) and its entry; what executing that one step
        needs, without reading a long run's journal."""
        ...

    def record_worker(self, owner: str, hosts: Sequence[Hosted], ttl_seconds: float) -> None:
        """`owner` is alive for `ttl_seconds` more (by the database's clock) and hosts `hosts`.
        Workers call it with their heartbeats; rows of workers gone longer than the event
        retention are dropped."""
        ...

    def resumers(self, run_ids: Sequence[str]) -> dict[str, list[Resumer]]:
        """For each run id given, the hosted versions any worker recorded that cover the run's
        version (exact, or through `resumes`), highest first; a run with none maps to []."""
        ...

    def claim(
        self,
        owner: str,
        accepts: Sequence[Accept],
        limit: int,
        lease_seconds: float,
        run_id: str | None = None,
        queues: Sequence[Queue] = (),
    ) -> list[Claim]:
        """Take up to `limit` runnable runs (pending, due, or with an expired lease) under a
        fresh lease token each, with their journals read once. Runs with a pending cancel whose
        lease expired are marked cancelled instead of being handed out. A run in a queue is
        taken only if its queue is among `queues` and its limits admit it (`Occupancy.admit`,
        counted in the same transaction, atomically across claimers), by priority then age."""
        ...

    def queue_states(self, names: Sequence[str]) -> list[QueueState]:
        """Running and pending runs of each named queue, and the oldest pending one's wait."""
        ...

    def heartbeat(self, run_id: str, token: str, lease_seconds: float) -> bool:
        """Extend the lease; False if it is no longer ours."""
        ...

    def append(self, run_id: str, token: str, entries: Sequence[JournalEntry]) -> None:
        """Commit entries (one INSERT + COMMIT for one entry), or raise LeaseLost."""
        ...

    def append_many(self, appends: Sequence[Append]) -> list[Exception | None]:
        """Commit several runs' appends, in one transaction where they all succeed (group
        commit: one fsync for all). Each lease is checked on its own rows, taken in run-id
        order; the answer, in the order asked, is None for an append committed or what it
        alone met (LeaseLost, RunStateError), which never keeps the others from committing.
        An append whose entries are all in the journal already, as they are, was committed
        (a shared commit run again after its connection was lost meets its own rows). Only a
        failure of the database itself (DatabaseUnavailable) is raised."""
        ...

    def append_stream(
        self, run_id: str, token: str, key: str, value: str, entry: JournalEntry
    ) -> int:
        """Append `value` (JSON text) to the run's stream `key` at its next offset and journal
        `entry` (kind stream, its value set to that offset) in one commit, the lease checked in
        it; return the offset, or raise LeaseLost. Wakes readers in `wait_for_work`."""
        ...

    def append_tokens(
        self, run_id: str, token: str, key: str, step_id: str, values: Sequence[str], first: bool
    ) -> None:
        """Append a model call's streamed tokens (JSON text each) to the run's stream `key`,
        tagged with the call's step id and journaled by nothing: the call is journaled once, as
        a whole. With `first` (an attempt's first write), if an earlier attempt of the step left
        tokens after its last restart marker, a marker goes first (`restart_marker`, naming the
        offset those tokens began at). Lease checked in the same commit, or LeaseLost."""
        ...

    def read_stream(self, run_id: str, key: str, offset: int = 0, limit: int = 1000) -> StreamPage:
        """Up to `limit` values of the run's stream `key` from `offset` on, in offset order;
        `closed` if the run had finished before they were read. RunNotFound if unknown."""
        ...

    def park(
        self, run_id: str, token: str, waits: Sequence[Wait], entries: Sequence[JournalEntry] = ()
    ) -> list[JournalEntry]:
        """Commit `entries`, then for each wait that can be satisfied now (a due timer, a held
        event, a finished child) journal its completion and return those entries, keeping the
        lease. If none can, store the waits, release the lease and return []."""
        ...

    def complete(
        self, run_id: str, token: str, output: str, entries: Sequence[JournalEntry] = ()
    ) -> None:
        """Mark completed and deliver the output to a waiting parent."""
        ...

    def fail(
        self,
        run_id: str,
        token: str,
        error: str,
        failed_step: str | None,
        entries: Sequence[JournalEntry] = (),
    ) -> None:
        """Mark failed with the error (JSON text) and deliver it to a waiting parent."""
        ...

    def needs_attention(self, run_id: str, token: str, step_id: str, evidence: str) -> None:
        """Park the run for a person to decide (an interrupted unsafe_on_replay call)."""
        ...

    def release(self, run_id: str, token: str) -> None:
        """Give the run back as pending without progress (graceful shutdown)."""
        ...

    def finish_cancel(self, run_id: str, token: str) -> None:
        """Mark a run whose cancel was requested while it ran as cancelled, with its children."""
        ...

    def cancel(self, run_id: str) -> RunRecord:
        """Cancel the run and its descendants: parked ones at once, running ones at their next
        primitive. RunNotFound if unknown, RunStateError if already finished."""
        ...

    def retry(self, run_id: str) -> RunRecord:
        """Make a failed run pending again; its failed step will run again with fresh attempts."""
        ...

    def resolve(self, run_id: str, step_id: str, entry: JournalEntry | None) -> RunRecord:
        """A person's decision on a needs_attention run: journal `entry` as the step's result
        (or, with None, let the step run again), and make the run pending."""
        ...

    def send_event(self, name: str, data: str, run_id: str | None = None) -> EventReceipt:
        """Store an event and, in the same transaction, wake the runs waiting on it."""
        ...

    def prune(self, finished_before: float) -> Pruned:
        """Delete runs that finished before the time, with their journals and waits, and
        events past retention. Blobs are swept separately, by reference (runtime/pruning.py)."""
        ...

    def blob_refs(self) -> set[str]:
        """Every blob address a run input/output or journal entry still refers to."""
        ...

    def put_schedule(self, schedule: Schedule) -> None:
        """Add the schedule, or replace the one with its name."""
        ...

    def schedules(self) -> list[Schedule]:
        """Every schedule, by name."""
        ...

    def delete_schedule(self, name: str) -> bool:
        """Remove it; False if there was none by that name."""
        ...

    def advance_schedule(self, name: str, expected_next_at: float, next_at: float) -> bool:
        """Move `next_at` on only if it still is `expected_next_at` (one worker wins a tick)."""
        ...

    def wait_for_work(self, timeout: float) -> None:
        """Block until a run may have become runnable (created, woken, released), a stream may
        have grown, or `timeout` passes. Backends that can be told (PostgreSQL LISTEN/NOTIFY,
        an in-process condition) return early; others just sleep, and the worker's poll finds
        the work."""
        ...

    def close(self) -> None: ...


# -- threads of another framework's graph (LangGraph) ---------------------------------------


@dataclass(slots=True)
class ThreadCheckpoint:
    """One checkpoint of a thread, as the framework serialised it (`type` names its encoding,
    `checkpoint` the bytes). `graph` is the `name@version` that wrote it: a thread is pinned to
    it. (thread, ns, checkpoint id) is unique; checkpoint ids sort in time order."""

    thread_id: str
    ns: str
    checkpoint_id: str
    parent_id: str | None
    graph: str
    type: str
    checkpoint: bytes
    metadata: str  # JSON text of a dict, or empty where the framework keeps it in `checkpoint`
    refs: tuple[str, ...] = ()  # the thread blobs it refers to: a sweep keeps those


@dataclass(slots=True)
class ThreadWrite:
    """A pending write of one task against one checkpoint: (task id, idx) is unique there."""

    task_id: str
    idx: int
    channel: str
    type: str
    value: bytes
    task_path: str = ""
    refs: tuple[str, ...] = ()


@dataclass(slots=True)
class ThreadBlob:
    """A value stored once by its content (a message, a channel value, a chunk of a list's
    item hashes), whichever checkpoints and threads refer to it. `hash` is the framework's
    address for it; `refs` are the blobs it refers to in turn (a chunk's items)."""

    hash: str
    type: str
    value: bytes
    refs: tuple[str, ...] = ()


@dataclass(slots=True)
class ThreadQuery:
    """Which checkpoints `thread_checkpoints` returns, newest first: every field set narrows it;
    `before` keeps checkpoint ids below it."""

    thread_id: str | None = None
    ns: str | None = None
    checkpoint_id: str | None = None
    before: str | None = None
    limit: int | None = None


class ThreadsPruned(BaseModel):
    checkpoints: int
    writes: int
    blobs: int


@runtime_checkable
class ThreadCheckpoints(Protocol):
    """Thread checkpoints for a graph framework's saver (integrations/langgraph), in tables of
    their own beside the runs. Every I2 backend implements it."""

    def put_thread_checkpoint(
        self, checkpoint: ThreadCheckpoint, blobs: Sequence[ThreadBlob] = ()
    ) -> None:
        """Store it, replacing one with the same (thread, ns, checkpoint id), and the blobs it
        refers to that are not stored yet, in one transaction."""
        ...

    def put_thread_writes(
        self,
        thread_id: str,
        ns: str,
        checkpoint_id: str,
        writes: Sequence[ThreadWrite],
        replace: bool,
        blobs: Sequence[ThreadBlob] = (),
    ) -> None:
        """Store the writes (and their new blobs); one already there at (task, idx) is
        replaced if `replace`, else kept."""
        ...

    def thread_blobs(self, hashes: Sequence[str]) -> dict[str, ThreadBlob]:
        """The stored blobs among `hashes`, by hash."""
        ...

    def thread_checkpoint(
        self, thread_id: str, ns: str, checkpoint_id: str | None
    ) -> ThreadCheckpoint | None:
        """That checkpoint, or with None the thread's newest in `ns`; None if there is none."""
        ...

    def thread_checkpoints(self, query: ThreadQuery) -> list[ThreadCheckpoint]:
        """Checkpoints matching the query, newest (highest checkpoint id) first."""
        ...

    def thread_writes(self, thread_id: str, ns: str, checkpoint_id: str) -> list[ThreadWrite]:
        """The checkpoint's pending writes, by task id then idx."""
        ...

    def delete_thread(self, thread_id: str) -> None:
        """Every checkpoint and write of the thread, in every namespace. Its blobs stay:
        another thread may refer to the same content."""
        ...

    def prune_threads(self, keep: int) -> ThreadsPruned:
        """Keep each thread's newest `keep` checkpoints in each namespace (and their writes),
        delete the older ones, then the blobs no remaining checkpoint or write refers to, in
        one transaction that a concurrent put waits for (it may rely on a blob stored before)."""
        ...
