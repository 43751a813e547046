"""Cancel, retry, resolve and events in the in-memory I2 double: the calls that change a run
from outside its execution."""

from __future__ import annotations

import json
import time
from dataclasses import replace

from tether.errors import RunStateError
from tether.foundation.checkpoint.contract import (
    TERMINAL,
    EntryKind,
    EntryStatus,
    EventReceipt,
    JournalEntry,
    LeaseLost,
    RunRecord,
    RunStatus,
    WaitKind,
)
from tether.foundation.checkpoint.events import event_entry, matches
from tether.foundation.checkpoint.memory.state import MemoryEvent, MemoryRun, MemoryState


class MemoryControl(MemoryState):
    """The control half of the I2 contract, mixed into MemoryCheckpointer."""

    def cancel(self, run_id: str) -> RunRecord:
        with self._lock:
            run = self._get(run_id)
            if run.record.status in TERMINAL:
                raise RunStateError(
                    f"run {run_id} is already {run.record.status}; nothing to cancel"
                )
            self._cancel_tree(run, time.time())
            return run.record

    def finish_cancel(self, run_id: str, token: str) -> None:
        now = time.time()
        with self._lock:
            run = self._runs.get(run_id)
            if run is None or run.token != token:
                raise LeaseLost(run_id)
            self._mark_cancelled(run, now)
            self._cancel_tree(run, now)

    def _cancel_tree(self, root: MemoryRun, now: float) -> None:
        tree, frontier = [root], [root.record.id]
        while frontier:
            parent = frontier.pop()
            for r in self._runs.values():
                if r.record.parent_id == parent:
                    tree.append(r)
                    frontier.append(r.record.id)
        for run in tree:
            rec = run.record
            if rec.status in TERMINAL:
                continue
            if rec.status is RunStatus.RUNNING and (rec.lease_expires_at or 0) >= now:
                self._update(run, rec.updated_at, cancel_requested=True)
            else:
                self._mark_cancelled(run, now)

    def _mark_cancelled(self, run: MemoryRun, now: float) -> None:
        run.token, run.waits = None, {}
        self._update(
            run,
            now,
            status=RunStatus.CANCELLED,
            cancel_requested=True,
            wake_at=None,
            lease_owner=None,
            lease_expires_at=None,
        )
        self._deliver_to_parent(run, now)

    def retry(self, run_id: str) -> RunRecord:
        with self._lock:
            self._retry(self._get(run_id), time.time())
            return self._runs[run_id].record

    def _retry(self, run: MemoryRun, now: float) -> None:
        rec = run.record
        if rec.status is not RunStatus.FAILED:
            raise RunStateError(f"run {rec.id} is {rec.status}; only a failed run can be retried")
        for k, e in list(run.journal.items()):
            if e.step_id == rec.failed_step and e.status is EntryStatus.ERROR:
                run.journal[k] = replace(e, status=EntryStatus.ATTEMPT)
                child = self._runs.get(e.ref or "")
                if e.kind is EntryKind.INVOKE and child and child.record.status is RunStatus.FAILED:
                    self._retry(child, now)
        self._update(run, now, status=RunStatus.PENDING, error=None, failed_step=None)

    def resolve(self, run_id: str, step_id: str, entry: JournalEntry | None) -> RunRecord:
        with self._lock:
            run = self._get(run_id)
            if run.record.status is not RunStatus.NEEDS_ATTENTION:
                raise RunStateError(
                    f"run {run_id} is {run.record.status}; only a needs_attention run can be "
                    "resolved"
                )
            if entry is not None:
                run.journal[(entry.step_id, entry.attempt)] = entry
            self._update(run, time.time(), status=RunStatus.PENDING, error=None, failed_step=None)
            return run.record

    def send_event(self, name: str, data: str, run_id: str | None = None) -> EventReceipt:
        now = time.time()
        payload = json.loads(data)
        with self._lock:
            if run_id is not None:
                target = self._get(run_id)
                if target.record.status in TERMINAL:
                    raise RunStateError(
                        f"run {run_id} is {target.record.status}; an event for it would never "
                        "be read"
                    )
            self._last_event += 1
            event = MemoryEvent(self._last_event, name, data, run_id, now)
            self._events.append(event)
            woken: list[str] = []
            for run in sorted(self._runs.values(), key=lambda r: r.record.created_at):
                if run.record.status in TERMINAL or (run_id and run.record.id != run_id):
                    continue
                for w in sorted(run.waits.values(), key=lambda w: w.step_id):
                    if w.kind is WaitKind.EVENT and w.event == name and matches(w.match, payload):
                        self._insert(
                            run,
                            [event_entry(run.record.id, w.step_id, w.name, event.id, data, now)],
                            ignore=True,
                        )
                        del run.waits[w.step_id]
                        self._wake(run, now)
                        woken.append(run.record.id)
                        break
        return EventReceipt(event_id=event.id, woken=woken)
