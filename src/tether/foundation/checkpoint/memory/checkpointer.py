"""MemoryCheckpointer: runs and their execution (create, claim, append, park, finish) in the
in-memory I2 double; see the package docstring for why it shares nothing with the SQL backends.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Any, Self

from tether.errors import RunStateError
from tether.foundation.checkpoint.contract import (
    TERMINAL,
    Accept,
    Append,
    Claim,
    EntryKind,
    EntryStatus,
    JournalEntry,
    LeaseLost,
    NewRun,
    RunFilter,
    RunRecord,
    RunStatus,
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
from tether.foundation.checkpoint.memory.control import MemoryControl
from tether.foundation.checkpoint.memory.forks import MemoryForks
from tether.foundation.checkpoint.memory.housekeeping import MemoryHousekeeping
from tether.foundation.checkpoint.memory.schedules import MemorySchedules
from tether.foundation.checkpoint.memory.state import MemoryRun
from tether.foundation.checkpoint.memory.streams import MemoryStreams
from tether.foundation.checkpoint.memory.threads import MemoryThreads
from tether.foundation.checkpoint.memory.workers import MemoryWorkers
from tether.foundation.checkpoint.queues import Occupancy, Queue, QueueState
from tether.foundation.checkpoint.starts import throttled_start


class MemoryCheckpointer(
    MemoryControl,
    MemoryHousekeeping,
    MemorySchedules,
    MemoryStreams,
    MemoryForks,
    MemoryThreads,
    MemoryWorkers,
):
    """I2 in memory; `event_retention` as in the SQL backends."""

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> Self:
        return cls(event_retention=settings.event_retention_seconds, **options)

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
            start_at = self._start_at(new, now)
            if isinstance(start_at, MemoryRun):  # the pending run of its debounce key
                start_at.record = start_at.record.model_copy(update={"input": new.input})
                return start_at.record, False
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
                queue=new.queue,
                queue_key=new.queue_key,
                priority=new.priority,
                start_at=start_at,
            )
            horizon = self._last_event
            self._runs[new.id] = MemoryRun(
                record=record,
                horizon=horizon,
                debounce_key=new.debounce.key if new.debounce else None,
                throttle_key=new.throttle.key if new.throttle else None,
            )
            if new.key is not None:
                self._keys[new.key] = new.id
            self._work.notify_all()
            return record, True

    def _start_at(self, new: NewRun, now: float) -> float | MemoryRun | None:
        """When a debounced or throttled run may start; or, for a debounced start, the pending
        run of its key, pushed back."""
        start_at: float | None = None
        if new.debounce is not None:
            start_at = now + new.debounce.period
            for run in self._runs.values():
                rec = run.record
                pending = rec.status is RunStatus.PENDING and rec.claims == 0
                if run.debounce_key == new.debounce.key and pending:
                    self._update(run, now, start_at=start_at)
                    return run
        if new.throttle is not None:
            rule = new.throttle
            latest = sorted(
                (
                    r.record.start_at or 0.0
                    for r in self._runs.values()
                    if r.throttle_key == rule.key
                ),
                reverse=True,
            )
            start_at = throttled_start(now, start_at or now, latest, rule)
        return start_at

    def get_run(self, run_id: str) -> RunRecord:
        with self._lock:
            return self._get(run_id).record

    def list_runs(self, filter: RunFilter) -> list[RunRecord]:
        now = time.time()
        with self._lock:
            runs = [
                r.record
                for r in self._runs.values()
                if not filter.stranded or self._stranded(r.record, now)
            ]
        if filter.statuses:
            runs = [r for r in runs if r.status in filter.statuses]
        if filter.workflow:
            runs = [r for r in runs if r.workflow == filter.workflow]
        if filter.version:
            runs = [r for r in runs if r.version == filter.version]
        if filter.parent_id:
            runs = [r for r in runs if r.parent_id == filter.parent_id]
        if filter.finished_before is not None:
            cutoff = filter.finished_before
            runs = [r for r in runs if r.status in TERMINAL and r.updated_at < cutoff]
        if filter.created_after is not None:
            runs = [r for r in runs if r.created_at >= filter.created_after]
        if filter.created_before is not None:
            runs = [r for r in runs if r.created_at < filter.created_before]
        if filter.before is not None:
            before = filter.before
            runs = [r for r in runs if (r.created_at, r.id) < before]
        runs.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        return runs[: filter.limit]

    def journal(self, run_id: str) -> list[JournalEntry]:
        with self._lock:
            entries = list(self._get(run_id).journal.values()) if run_id in self._runs else []
        return sorted(entries, key=lambda e: (e.finished_at, e.step_id, e.attempt))

    def journal_at(self, run_id: str, step_id: str) -> list[JournalEntry]:
        timers = f"{step_id}~"
        return [
            e for e in self.journal(run_id) if e.step_id == step_id or e.step_id.startswith(timers)
        ]

    # -- execution ----------------------------------------------------------------------

    def claim(
        self,
        owner: str,
        accepts: Sequence[Accept],
        limit: int,
        lease_seconds: float,
        run_id: str | None = None,
        queues: Sequence[Queue] = (),
    ) -> list[Claim]:
        now = time.time()
        claims: list[Claim] = []
        known = {q.name: q for q in queues}
        held: dict[str, Occupancy] = {}
        with self._lock:
            candidates = sorted(
                self._runs.values(), key=lambda r: (-r.record.priority, r.record.created_at)
            )
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
                queue = known.get(rec.queue) if rec.queue is not None else None
                if rec.queue is not None and queue is None:
                    continue  # a queue this worker does not know the limits of
                if rec.cancel_requested:
                    self._mark_cancelled(run, now)
                    continue
                if queue is not None:
                    if queue.name not in held:
                        held[queue.name] = self._occupancy(queue, now)
                    if not held[queue.name].admit(
                        queue,
                        rec.queue_key,
                        holds_slot=rec.status is RunStatus.RUNNING,
                        first_start=run.started_at is None,
                    ):
                        continue
                run.token = uuid.uuid4().hex
                run.started_at = run.started_at or now
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

    def _occupancy(self, queue: Queue, now: float) -> Occupancy:
        held = Occupancy()
        for run in self._runs.values():
            if run.record.queue != queue.name:
                continue
            if run.record.status is RunStatus.RUNNING:
                held.running[run.record.queue_key] += 1
            if run.started_at is not None and run.started_at > now - queue.per:
                held.started += 1
        return held

    def queue_states(self, names: Sequence[str]) -> list[QueueState]:
        with self._lock:
            runs = [r.record for r in self._runs.values() if r.record.queue in names]
        states = []
        for name in names:
            mine = [r for r in runs if r.queue == name]
            pending = [r.updated_at for r in mine if r.status is RunStatus.PENDING]
            running = sum(r.status is RunStatus.RUNNING for r in mine)
            states.append(QueueState(name, running, len(pending), min(pending, default=None)))
        return states

    @staticmethod
    def _runnable(rec: RunRecord, now: float) -> bool:
        if rec.status is RunStatus.PENDING:
            return rec.start_at is None or rec.start_at <= now
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

    def append_many(self, appends: Sequence[Append]) -> list[Exception | None]:
        results: list[Exception | None] = []
        for a in appends:
            try:
                if a.output is not None:
                    self.complete(a.run_id, a.token, a.output, a.entries)
                else:
                    self.append(a.run_id, a.token, a.entries)
            except LeaseLost as e:
                results.append(e)
            except RunStateError as e:  # its own rows already there count as written
                stored = {(j.step_id, j.attempt): j for j in self.journal(a.run_id)}
                same = all(stored.get((j.step_id, j.attempt)) == j for j in a.entries)
                results.append(None if same else e)
            else:
                results.append(None)
        return results

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

    def _resolve_wait(self, run: MemoryRun, w: Wait, now: float) -> JournalEntry | None:
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

    def _take_held_event(self, run: MemoryRun, w: Wait, now: float) -> JournalEntry | None:
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
