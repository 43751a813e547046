"""The state the in-memory I2 double keeps, under one lock, and the moves every part of it
makes: find a run, check a lease, journal entries, update a record, wake a run, deliver a
child's result to its parent."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tether.errors import RunNotFound, RunStateError
from tether.foundation.checkpoint.contract import (
    TERMINAL,
    JournalEntry,
    LeaseLost,
    RunRecord,
    RunStatus,
    Schedule,
    StreamItem,
    Wait,
)
from tether.foundation.checkpoint.events import child_entry


@dataclass
class MemoryRun:
    """A run's record, and what only the double keeps beside it (the SQL backends keep these
    in columns and tables): the lease token, the event horizon, the journal, the waits, the
    streams, the time of the first claim and the keys its start was debounced or throttled by."""

    record: RunRecord
    token: str | None = None
    horizon: int = 0
    journal: dict[tuple[str, int], JournalEntry] = field(default_factory=dict)
    waits: dict[str, Wait] = field(default_factory=dict)
    streams: dict[str, list[StreamItem]] = field(default_factory=dict)
    stream_steps: dict[str, dict[int, str]] = field(default_factory=dict)  # model tokens' steps
    started_at: float | None = None  # its first claim: what a queue's rate limit counts
    debounce_key: str | None = None
    throttle_key: str | None = None


@dataclass(frozen=True)
class MemoryEvent:
    """A sent event, held for waits that begin later (retention as in the SQL backends)."""

    id: int
    name: str
    data: str
    run_id: str | None
    created_at: float


class MemoryState:
    """The runs, events and schedules; the parts of MemoryCheckpointer share them."""

    def __init__(self, event_retention: float = 7 * 24 * 3600.0) -> None:
        self._lock = threading.RLock()
        self._work = threading.Condition(self._lock)
        self._runs: dict[str, MemoryRun] = {}
        self._keys: dict[str, str] = {}
        self._events: list[MemoryEvent] = []
        self._last_event = 0  # ids are never reused, even after old events are pruned
        self._schedules: dict[str, Schedule] = {}
        self._retention = event_retention

    def _get(self, run_id: str) -> MemoryRun:
        run = self._runs.get(run_id)
        if run is None:
            raise RunNotFound(run_id)
        return run

    def _leased(self, run_id: str, token: str) -> MemoryRun:
        run = self._runs.get(run_id)
        if run is None or run.token != token or run.record.cancel_requested:
            raise LeaseLost(run_id, cancel_requested=bool(run and run.record.cancel_requested))
        return run

    @staticmethod
    def _insert(run: MemoryRun, entries: Sequence[JournalEntry], ignore: bool = False) -> None:
        for e in entries:
            key = (e.step_id, e.attempt)
            if key in run.journal and ignore:
                continue
            if key in run.journal:
                raise RunStateError(
                    f"journal entry {e.step_id}#{e.attempt} of run {e.run_id} already exists"
                )
            run.journal[key] = e

    def _update(self, run: MemoryRun, now: float, **changes: Any) -> None:
        run.record = run.record.model_copy(update={**changes, "updated_at": now})
        if changes.get("status") is RunStatus.PENDING or run.record.status in TERMINAL:
            self._work.notify_all()  # a run to claim, or a stream closed

    def _wake(self, run: MemoryRun, now: float) -> None:
        if run.record.status in (RunStatus.WAITING, RunStatus.SLEEPING, RunStatus.PAUSED):
            self._update(run, now, status=RunStatus.PENDING, wake_at=None)

    def _deliver_to_parent(self, child: MemoryRun, now: float) -> None:
        rec = child.record
        parent = self._runs.get(rec.parent_id or "")
        if parent is None or rec.parent_step is None:
            return
        name = str(rec.meta.get("step_name", rec.parent_step))
        self._insert(parent, [child_entry(rec, name, now)], ignore=True)
        parent.waits.pop(rec.parent_step, None)
        self._wake(parent, now)
