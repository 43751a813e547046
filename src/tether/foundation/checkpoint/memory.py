"""The in-process I2 test double: the contract's semantics in plain Python under one lock.

It keeps nothing across processes, so it is for tests and for trying a workflow in a REPL.
It is written from the contract, not from the SQL backends, and the contract suite runs over
it and them alike: where they disagree, one of them is wrong.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from typing import Any

from tether.errors import RunNotFound, RunStateError
from tether.foundation.blobs.contract import blob_address
from tether.foundation.checkpoint.contract import (
    TERMINAL,
    Accept,
    Claim,
    EntryKind,
    EntryStatus,
    EventReceipt,
    JournalEntry,
    LeaseLost,
    NewRun,
    Pruned,
    RunFilter,
    RunRecord,
    RunStatus,
    Schedule,
    Wait,
    WaitKind,
)
from tether.foundation.checkpoint.events import (
    child_entry,
    deadline_entry,
    event_entry,
    matches,
    parked_status,
)


@dataclass
class _Run:
    record: RunRecord
    token: str | None = None
    horizon: int = 0
    journal: dict[tuple[str, int], JournalEntry] = field(default_factory=dict)
    waits: dict[str, Wait] = field(default_factory=dict)


@dataclass(frozen=True)
class _Event:
    id: int
    name: str
    data: str
    run_id: str | None
    created_at: float


class MemoryCheckpointer:
    """I2 in memory; `event_retention` as in the SQL backends."""

    def __init__(self, event_retention: float = 7 * 24 * 3600.0) -> None:
        self._lock = threading.RLock()
        self._work = threading.Condition(self._lock)
        self._runs: dict[str, _Run] = {}
        self._keys: dict[str, str] = {}
        self._events: list[_Event] = []
        self._last_event = 0  # ids are never reused, even after old events are pruned
        self._schedules: dict[str, Schedule] = {}
        self._retention = event_retention

    @classmethod
    def from_settings(cls, settings: Any) -> MemoryCheckpointer:
        return cls(event_retention=settings.event_retention_seconds)

    def close(self) -> None:
        """Nothing to release: the state goes with the object."""

    def wait_for_work(self, timeout: float) -> None:
        with self._work:
            self._work.wait(timeout)

    # -- runs ---------------------------------------------------------------------------

    def create_run(self, new: NewRun) -> tuple[RunRecord, bool]:
        with self._lock:
            if new.key is not None and new.key in self._keys:
                return self._runs[self._keys[new.key]].record, False
            now = time.time()
            record = RunRecord(
                id=new.id,
                workflow=new.workflow,
                version=new.version,
                status=RunStatus.PENDING,
                input=new.input,
                key=new.key,
                parent_id=new.parent_id,
                parent_step=new.parent_step,
                created_at=now,
                updated_at=now,
                meta=new.meta,
            )
            horizon = self._last_event
            self._runs[new.id] = _Run(record=record, horizon=horizon)
            if new.key is not None:
                self._keys[new.key] = new.id
            self._work.notify_all()
            return record, True

    def get_run(self, run_id: str) -> RunRecord:
        with self._lock:
            return self._get(run_id).record

    def list_runs(self, filter: RunFilter) -> list[RunRecord]:
        with self._lock:
            runs = [r.record for r in self._runs.values()]
        if filter.statuses:
            runs = [r for r in runs if r.status in filter.statuses]
        if filter.workflow:
            runs = [r for r in runs if r.workflow == filter.workflow]
        if filter.parent_id:
            runs = [r for r in runs if r.parent_id == filter.parent_id]
        if filter.finished_before is not None:
            cutoff = filter.finished_before
            runs = [r for r in runs if r.status in TERMINAL and r.updated_at < cutoff]
        runs.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        return runs[: filter.limit]

    def journal(self, run_id: str) -> list[JournalEntry]:
        with self._lock:
            entries = list(self._get(run_id).journal.values()) if run_id in self._runs else []
        return sorted(entries, key=lambda e: (e.finished_at, e.step_id, e.attempt))

    # -- execution ----------------------------------------------------------------------

    def claim(
        self,
        owner: str,
        accepts: Sequence[Accept],
        limit: int,
        lease_seconds: float,
        run_id: str | None = None,
    ) -> list[Claim]:
        now = time.time()
        claims: list[Claim] = []
        with self._lock:
            candidates = sorted(self._runs.values(), key=lambda r: r.record.created_at)
            for run in candidates:
                if len(claims) >= limit:
                    break
                rec = run.record
                if run_id is not None and rec.id != run_id:
                    continue
                if not self._runnable(rec, now) or not any(
                    a.workflow == rec.workflow and fnmatchcase(rec.version, a.version)
                    for a in accepts
                ):
                    continue
                if rec.cancel_requested:
                    self._mark_cancelled(run, now)
                    continue
                run.token = uuid.uuid4().hex
                self._update(
                    run,
                    now,
                    status=RunStatus.RUNNING,
                    lease_owner=owner,
                    lease_expires_at=now + lease_seconds,
                    claims=rec.claims + 1,
                )
                claims.append(
                    Claim(run=run.record, token=run.token, journal=list(run.journal.values()))
                )
        return claims

    @staticmethod
    def _runnable(rec: RunRecord, now: float) -> bool:
        if rec.status is RunStatus.PENDING:
            return True
        if rec.status in (RunStatus.SLEEPING, RunStatus.WAITING):
            return rec.wake_at is not None and rec.wake_at <= now
        return rec.status is RunStatus.RUNNING and (rec.lease_expires_at or 0) < now

    def heartbeat(self, run_id: str, token: str, lease_seconds: float) -> bool:
        with self._lock:
            run = self._runs.get(run_id)
            if run is None or run.token != token:
                return False
            run.record = run.record.model_copy(
                update={"lease_expires_at": time.time() + lease_seconds}
            )
            return True

    def append(self, run_id: str, token: str, entries: Sequence[JournalEntry]) -> None:
        with self._lock:
            run = self._leased(run_id, token)
            self._insert(run, entries)

    def park(
        self, run_id: str, token: str, waits: Sequence[Wait], entries: Sequence[JournalEntry] = ()
    ) -> list[JournalEntry]:
        now = time.time()
        with self._lock:
            run = self._leased(run_id, token)
            self._insert(run, entries)
            old = run.waits
            run.waits = {}
            resolved: list[JournalEntry] = []
            for w in waits:
                if w.step_id in old:
                    w = w.model_copy(update={"deadline": old[w.step_id].deadline})
                entry = self._resolve_wait(run, w, now)
                if entry is not None:
                    resolved.append(entry)
                else:
                    run.waits[w.step_id] = w
            if resolved:
                return resolved
            deadlines = [w.deadline for w in run.waits.values() if w.deadline is not None]
            run.token = None
            self._update(
                run,
                now,
                status=parked_status(waits),
                wake_at=min(deadlines) if deadlines else None,
                lease_owner=None,
                lease_expires_at=None,
            )
            return []

    def _resolve_wait(self, run: _Run, w: Wait, now: float) -> JournalEntry | None:
        done = [
            e
            for (sid, _), e in run.journal.items()
            if sid == w.step_id and e.status is not EntryStatus.ATTEMPT
        ]
        if done:
            return done[0]
        entry: JournalEntry | None = None
        if w.kind is WaitKind.EVENT:
            entry = self._take_held_event(run, w, now)
        elif w.kind is WaitKind.CHILD and w.child_id in self._runs:
            child = self._runs[w.child_id].record
            if child.status in TERMINAL:
                entry = child_entry(child, w.name, now)
        if entry is None and w.deadline is not None and w.deadline <= now:
            entry = deadline_entry(run.record.id, w, now)
        if entry is not None:
            self._insert(run, [entry])
        return entry

    def _take_held_event(self, run: _Run, w: Wait, now: float) -> JournalEntry | None:
        seen = {e.ref for e in run.journal.values() if e.kind is EntryKind.EVENT}
        for ev in self._events:
            if ev.name != w.event or ev.created_at < now - self._retention or str(ev.id) in seen:
                continue
            addressed = ev.run_id == run.record.id
            broadcast = ev.run_id is None and ev.id > run.horizon and bool(w.match)
            if (addressed or broadcast) and matches(w.match, json.loads(ev.data)):
                return event_entry(run.record.id, w.step_id, w.name, ev.id, ev.data, now)
        return None

    def complete(
        self, run_id: str, token: str, output: str, entries: Sequence[JournalEntry] = ()
    ) -> None:
        self._finish(run_id, token, entries, status=RunStatus.COMPLETED, output=output)

    def fail(
        self,
        run_id: str,
        token: str,
        error: str,
        failed_step: str | None,
        entries: Sequence[JournalEntry] = (),
    ) -> None:
        self._finish(
            run_id, token, entries, status=RunStatus.FAILED, error=error, failed_step=failed_step
        )

    def _finish(
        self, run_id: str, token: str, entries: Sequence[JournalEntry], **changes: Any
    ) -> None:
        now = time.time()
        with self._lock:
            run = self._leased(run_id, token)
            self._insert(run, entries)
            run.token, run.waits = None, {}
            self._update(run, now, wake_at=None, lease_owner=None, lease_expires_at=None, **changes)
            self._deliver_to_parent(run, now)

    def needs_attention(self, run_id: str, token: str, step_id: str, evidence: str) -> None:
        with self._lock:
            run = self._leased(run_id, token)
            run.token = None
            self._update(
                run,
                time.time(),
                status=RunStatus.NEEDS_ATTENTION,
                error=evidence,
                failed_step=step_id,
                lease_owner=None,
                lease_expires_at=None,
            )

    def release(self, run_id: str, token: str) -> None:
        with self._lock:
            run = self._runs.get(run_id)
            if run is not None and run.token == token:
                run.token = None
                self._update(
                    run,
                    time.time(),
                    status=RunStatus.PENDING,
                    lease_owner=None,
                    lease_expires_at=None,
                )

    # -- control ------------------------------------------------------------------------

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

    def _cancel_tree(self, root: _Run, now: float) -> None:
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

    def _mark_cancelled(self, run: _Run, now: float) -> None:
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

    def _retry(self, run: _Run, now: float) -> None:
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
            event = _Event(self._last_event, name, data, run_id, now)
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

    # -- housekeeping -------------------------------------------------------------------

    def prune(self, finished_before: float) -> Pruned:
        with self._lock:
            gone = [
                r
                for r in self._runs.values()
                if r.record.status in TERMINAL and r.record.updated_at < finished_before
            ]
            for run in gone:
                del self._runs[run.record.id]
                if run.record.key is not None:
                    self._keys.pop(run.record.key, None)
            horizon = time.time() - self._retention
            kept = [e for e in self._events if e.created_at >= horizon]
            dropped, self._events = len(self._events) - len(kept), kept
            return Pruned(
                run_ids=[r.record.id for r in gone],
                entries=sum(len(r.journal) for r in gone),
                events=dropped,
            )

    def blob_refs(self) -> set[str]:
        with self._lock:
            texts = [
                t
                for r in self._runs.values()
                for t in (
                    r.record.input,
                    r.record.output,
                    *(v for e in r.journal.values() for v in (e.value, e.input)),
                )
            ]
        return {a for t in texts if (a := blob_address(t))}

    # -- schedules ----------------------------------------------------------------------

    def put_schedule(self, schedule: Schedule) -> None:
        with self._lock:
            self._schedules[schedule.name] = schedule

    def schedules(self) -> list[Schedule]:
        with self._lock:
            return sorted(self._schedules.values(), key=lambda s: s.name)

    def delete_schedule(self, name: str) -> bool:
        with self._lock:
            return self._schedules.pop(name, None) is not None

    def advance_schedule(self, name: str, expected_next_at: float, next_at: float) -> bool:
        with self._lock:
            current = self._schedules.get(name)
            if current is None or current.next_at != expected_next_at:
                return False
            self._schedules[name] = current.model_copy(update={"next_at": next_at})
            return True

    # -- helpers ------------------------------------------------------------------------

    def _get(self, run_id: str) -> _Run:
        run = self._runs.get(run_id)
        if run is None:
            raise RunNotFound(run_id)
        return run

    def _leased(self, run_id: str, token: str) -> _Run:
        run = self._runs.get(run_id)
        if run is None or run.token != token or run.record.cancel_requested:
            raise LeaseLost(run_id, cancel_requested=bool(run and run.record.cancel_requested))
        return run

    @staticmethod
    def _insert(run: _Run, entries: Sequence[JournalEntry], ignore: bool = False) -> None:
        for e in entries:
            key = (e.step_id, e.attempt)
            if key in run.journal and ignore:
                continue
            if key in run.journal:
                raise RunStateError(
                    f"journal entry {e.step_id}#{e.attempt} of run {e.run_id} already exists"
                )
            run.journal[key] = e

    def _update(self, run: _Run, now: float, **changes: Any) -> None:
        run.record = run.record.model_copy(update={**changes, "updated_at": now})
        if changes.get("status") is RunStatus.PENDING:
            self._work.notify_all()

    def _wake(self, run: _Run, now: float) -> None:
        if run.record.status in (RunStatus.WAITING, RunStatus.SLEEPING, RunStatus.PAUSED):
            self._update(run, now, status=RunStatus.PENDING, wake_at=None)

    def _deliver_to_parent(self, child: _Run, now: float) -> None:
        rec = child.record
        parent = self._runs.get(rec.parent_id or "")
        if parent is None or rec.parent_step is None:
            return
        name = str(rec.meta.get("step_name", rec.parent_step))
        self._insert(parent, [child_entry(rec, name, now)], ignore=True)
        parent.waits.pop(rec.parent_step, None)
        self._wake(parent, now)
