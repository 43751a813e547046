"""I3 WorkflowEngine: what tether asks of whatever executes its workflows.

`Tether` (and through it the CLI and the HTTP API) runs the whole lifecycle through this
contract: start, status, list, inspect (the journal), cancel, retry, send an event, resolve a
parked call, run a worker. Nothing above it knows which engine runs; the engine is chosen by
settings `engine` (env `TETHER_ENGINE`) and found in the entry-point group `tether.engine`.

Which records each engine keeps:
- `local` (tether's own runtime): everything in I2's tables: the runs index, the journal,
  waits, held events, leases and schedules.
- `temporal`: the runs index, the journal, waits and held events stay in I2's tables (an
  event sent to no run and held for runs that reach a matching wait later has no Temporal
  equivalent; a parked run is sleeping or waiting there as on the local engine, and a retried
  run resumes from the journal); the execution itself (which worker runs it, its timers, its
  replay) is Temporal's, and a run's I2 lease is held by its execution while it runs.
Below the engine, on both, tool-call results (I1), guards (I9, I10), cost (I11), spans (I4)
and blobs behave the same.

The engine speaks in I2's records (`NewRun`, `RunRecord`, `JournalEntry`), which every engine
fills: a caller reads a run the same way whichever engine ran it. Validating a workflow's
input and encoding it happen above, in the client, once for every engine.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

from tether.foundation.checkpoint.contract import (
    EventReceipt,
    JournalEntry,
    NewRun,
    RunFilter,
    RunRecord,
)

if TYPE_CHECKING:
    from tether.settings import Settings


@runtime_checkable
class EngineWorker(Protocol):
    """A worker of an engine: executes runs in this process until stopped."""

    owner: str

    def run(self, until_idle: bool = False) -> int:
        """Execute runs until `stop` (or, with until_idle, until nothing is runnable); returns
        how many runs this worker executed."""
        ...

    def stop(self) -> None:
        """Stop taking runs; runs in hand are released at their next primitive boundary."""
        ...


@runtime_checkable
class WorkflowEngine(Protocol):
    """The run lifecycle. Backends: local (tether's runtime), temporal."""

    name: str

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> Self:
        """Built by `tether.foundation.loader` with the client's `services` (the interfaces
        below the engine: checkpointer, codec, sink, foundations, registry) as an option."""
        ...

    def start(self, new: NewRun) -> RunRecord:
        """Record the run (pending) and have it executed; with a key already used, return
        that run and start nothing."""
        ...

    def status(self, run_id: str) -> RunRecord:
        """The run, or RunNotFound."""
        ...

    def list_runs(self, filter: RunFilter) -> list[RunRecord]:
        """Runs matching the filter, newest first."""
        ...

    def journal(self, run_id: str) -> list[JournalEntry]:
        """Every primitive the run executed, in order, with inputs, outputs and timing."""
        ...

    def cancel(self, run_id: str) -> RunRecord:
        """Cancel the run and its children (a running one at its next primitive)."""
        ...

    def retry(self, run_id: str) -> RunRecord:
        """Resume a failed (or cancelled) run from the step that failed."""
        ...

    def send_event(self, name: str, data: str, run_id: str | None = None) -> EventReceipt:
        """Deliver an event (`data` is a JSON object): to `run_id` only, or to every run
        waiting on it now, held for matching waits reached later."""
        ...

    def resolve(self, run_id: str, step_id: str) -> RunRecord:
        """Resume a needs_attention run once the person's decision on its interrupted call
        is recorded in I1 (the caller records it first)."""
        ...

    def worker(self, concurrency: int = 1) -> EngineWorker:
        """A worker for every workflow this process registered."""
        ...

    def run(
        self,
        run_id: str,
        stop: threading.Event,
        on_wait: Callable[[RunRecord], None] | None = None,
    ) -> RunRecord:
        """Execute the run (and children it invokes) in this process until it finishes, parks
        for a person or `stop` is set, waiting through sleeps and event waits (`on_wait` is
        called each time it waits). Returns the run as it stands."""
        ...

    def close(self) -> None: ...
