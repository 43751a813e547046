"""The I2 run-state control flow, once for both SQL databases: append, park, finish, cancel,
retry, resolve and events, over a `Database` (connections, transactions, errors) and a `Dialect`
(the SQL). `backends/sqlite/` and `backends/postgres/` keep what really differs: schema,
connections, claiming, creating and releasing runs. `memory/` stays its own implementation on
purpose: it is the oracle the contract suite holds these against.

Every write for a run checks its lease in the statement that reads (on PostgreSQL, locks) the
run's row, and takes `now` from that row's `db_now`, the database's clock. On PostgreSQL,
whatever satisfies a wait first takes a lock park also holds (the parent's row for a child's
delivery, a per-name advisory lock for an event), so no wake-up falls between a park's check
and its commit; the hooks that take those locks, and NOTIFY, do nothing on SQLite, whose
`BEGIN IMMEDIATE` already serialises every writer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar, Generic, TypeVar

from tether.errors import RunNotFound, RunStateError
from tether.foundation.checkpoint.contract import (
    TERMINAL,
    Append,
    EventReceipt,
    JournalEntry,
    LeaseLost,
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
from tether.foundation.checkpoint.sql.dialect import Connection, Database, Dialect
from tether.foundation.checkpoint.sql.rows import entry_row, to_entry, to_run

D = TypeVar("D", bound=Database)


class SqlCheckpointer(Generic[D]):
    """The part of I2 both SQL backends share; a backend sets `_sql`, `_db` and `_retention`
    and overrides the lock hooks it needs."""

    _sql: ClassVar[Dialect]
    _db: D
    _retention: float

    def wait_for_work(self, timeout: float) -> None:
        self._db.wait(timeout)

    def close(self) -> None:
        self._db.close()

    # -- runs ---------------------------------------------------------------------------

    def get_run(self, run_id: str) -> RunRecord:
        rows = self._db.one(self._sql.run, (run_id,))
        if not rows:
            raise RunNotFound(run_id)
        return to_run(rows[0])

    def list_runs(self, filter: RunFilter) -> list[RunRecord]:
        return [to_run(r) for r in self._db.one(*self.list_query(filter))]

    def list_query(self, filter: RunFilter) -> tuple[str, tuple[Any, ...]]:
        """The statement `list_runs` runs, and its arguments: one range of an index ending in
        (created_at, id) per status asked for, or of runs_by_created (tests EXPLAIN it)."""
        p = self._sql.placeholder
        where, args = list[str](), list[Any]()
        for column in ("workflow", "version", "parent_id"):
            if getattr(filter, column):
                where.append(f"{column} = {p}")
                args.append(getattr(filter, column))
        if filter.finished_before is not None:
            where.append(f"status IN ('completed', 'failed', 'cancelled') AND updated_at < {p}")
            args.append(filter.finished_before)
        if filter.created_after is not None:
            where.append(f"created_at >= {p}")
            args.append(filter.created_after)
        if filter.created_before is not None:
            where.append(f"created_at < {p}")
            args.append(filter.created_before)
        if filter.before is not None:
            # (created_at, id) < cursor, spelt so both databases scan the index's range
            where.append(f"created_at <= {p} AND (created_at < {p} OR id < {p})")
            created, run_id = filter.before
            args += [created, created, run_id]
        statuses = list(dict.fromkeys(s.value for s in filter.statuses))
        if filter.stranded:
            where.append(self._sql.stranded)
            statuses = statuses or [s.value for s in RunStatus if s not in TERMINAL]
        order = f"ORDER BY created_at DESC, id DESC LIMIT {p}"
        if len(statuses) <= 1:
            conditions = [f"status = {p}"] * len(statuses) + where
            return (
                f"SELECT * FROM runs WHERE {' AND '.join(conditions) or '1 = 1'} {order}",
                (*statuses, *args, filter.limit),
            )
        # Several statuses: a page from each one's index range, then the newest of those. An
        # IN over them would read every matching run and sort them all for one page.
        branch = f"SELECT * FROM runs WHERE {' AND '.join([f'status = {p}', *where])} {order}"
        union = " UNION ALL ".join(
            f"SELECT * FROM ({branch}) AS s{i}" for i in range(len(statuses))
        )
        params = [x for status in statuses for x in (status, *args, filter.limit)]
        return f"SELECT * FROM ({union}) AS page {order}", (*params, filter.limit)

    def journal(self, run_id: str) -> list[JournalEntry]:
        return [to_entry(r) for r in self._db.one(self._sql.journal, (run_id,))]

    def journal_at(self, run_id: str, step_id: str) -> list[JournalEntry]:
        timers = f"{step_id}~%"  # ids are digits and dots: nothing to escape
        rows = self._db.one(self._sql.journal_at, (run_id, step_id, timers))
        return [to_entry(r) for r in rows]

    # -- execution ----------------------------------------------------------------------

    def heartbeat(self, run_id: str, token: str, lease_seconds: float) -> bool:
        return bool(self._db.one(self._sql.heartbeat, (lease_seconds, run_id, token)))

    def append(self, run_id: str, token: str, entries: Sequence[JournalEntry]) -> None:
        if len(entries) == 1:  # a plain step: one INSERT + COMMIT, the lease checked in it
            args = (*entry_row(entries[0]), run_id, token)
            if self._db.rowcount(self._sql.insert_if_leased, args) != 1:
                raise self._lease_lost(run_id)
            return

        def append(c: Connection) -> None:
            self._check_lease(c, run_id, token)
            c.cursor().executemany(self._sql.insert_entry, [entry_row(e) for e in entries])

        self._db.tx(append)

    def append_many(self, appends: Sequence[Append]) -> list[Exception | None]:
        order = sorted(range(len(appends)), key=lambda i: appends[i].run_id)

        def append_all(c: Connection) -> list[Exception | None]:
            # Rows are taken in run-id order (PostgreSQL's own `append_many` too), so two
            # batches cannot deadlock on them; a completion locks its parent first, as
            # `complete` does. A fenced append writes nothing and the batch goes on.
            results: list[Exception | None] = [None] * len(appends)
            for i in order:
                a = appends[i]
                if a.output is not None:
                    try:
                        self._finish_in(
                            c, a.run_id, a.token, RunStatus.COMPLETED, a.output, None, None,
                            a.entries,
                        )  # fmt: skip
                    except LeaseLost as e:
                        results[i] = e
                elif len(a.entries) == 1:
                    if c.execute(self._sql.insert_if_leased, self._leased_row(a)).rowcount != 1:
                        results[i] = self._lease_lost(a.run_id, c)
                elif c.execute(self._sql.check_lease, (a.run_id, a.token)).fetchone() is None:
                    results[i] = self._lease_lost(a.run_id, c)
                else:
                    c.cursor().executemany(
                        self._sql.insert_entry, [entry_row(e) for e in a.entries]
                    )
            return results

        try:
            return self._db.tx(append_all)
        except RunStateError:
            # An entry already written (the transaction rolled back for it): each append
            # commits on its own, so only that one fails.
            return [self._append_alone(a) for a in appends]

    @staticmethod
    def _leased_row(a: Append) -> tuple[Any, ...]:
        return (*entry_row(a.entries[0]), a.run_id, a.token)

    def _append_alone(self, a: Append) -> Exception | None:
        try:
            if a.output is not None:
                self.complete(a.run_id, a.token, a.output, a.entries)
            else:
                self.append(a.run_id, a.token, a.entries)
        except LeaseLost as e:
            return e
        except RunStateError as e:
            return None if self._already_written(a) else e
        return None

    def _already_written(self, a: Append) -> bool:
        """Every entry of the append is in the journal as it is: the shared commit did go
        through before its connection was lost, and the run of it again (`Database.tx`) met
        its own rows, as a lone append's second try does (`rowcount` on PostgreSQL)."""
        stored = {(e.step_id, e.attempt): e for e in self.journal(a.run_id)}
        return all(stored.get((e.step_id, e.attempt)) == e for e in a.entries)

    def park(
        self, run_id: str, token: str, waits: Sequence[Wait], entries: Sequence[JournalEntry] = ()
    ) -> list[JournalEntry]:
        def park(c: Connection) -> list[JournalEntry]:
            for name in sorted({w.event for w in waits if w.event is not None}):
                self._lock_event(c, name)  # before the row lock, in send_event's order
            run, now = self._check_lease(c, run_id, token)
            if entries:
                c.cursor().executemany(self._sql.insert_entry, [entry_row(e) for e in entries])
            rows = c.execute(self._sql.waits, (run_id,)).fetchall()
            existing = {r["step_id"]: r["deadline"] for r in rows}
            for step_id in existing.keys() - {w.step_id for w in waits}:
                c.execute(self._sql.drop_wait, (run_id, step_id))
            resolved: list[JournalEntry] = []
            deadlines: list[float] = []
            for w in waits:
                deadline = existing.get(w.step_id, w.deadline)
                entry = self._resolve_wait(c, run, w, deadline, now)
                if entry is not None:
                    resolved.append(entry)
                    c.execute(self._sql.drop_wait, (run_id, w.step_id))
                    continue
                c.execute(
                    self._sql.put_wait,
                    (run_id, w.step_id, w.name, w.kind.value, deadline, w.event,
                     json.dumps(w.match), w.child_id),
                )  # fmt: skip
                if deadline is not None:
                    deadlines.append(deadline)
            if resolved:
                return resolved
            wake_at = min(deadlines) if deadlines else None
            c.execute(self._sql.park, (parked_status(waits).value, wake_at, now, run_id))
            return []

        return self._db.tx(park)

    def _resolve_wait(
        self, c: Connection, run: RunRecord, w: Wait, deadline: float | None, now: float
    ) -> JournalEntry | None:
        """The wait's completion if it can be had now, journaled; else None."""
        row = c.execute(self._sql.completion, (run.id, w.step_id)).fetchone()
        if row is not None:  # delivered while the run was running (an event or a child)
            return to_entry(row)
        entry: JournalEntry | None = None
        if w.kind is WaitKind.EVENT:
            entry = self._take_held_event(c, run, w, now)
        elif w.kind is WaitKind.CHILD and w.child_id is not None:
            child = c.execute(self._sql.run, (w.child_id,)).fetchone()
            if child is not None and child["status"] in TERMINAL:
                entry = child_entry(to_run(child), w.name, now)
        if entry is None and deadline is not None and deadline <= now:
            entry = deadline_entry(run.id, w, now)
        if entry is not None:
            c.execute(self._sql.insert_entry, entry_row(entry))
        return entry

    def _take_held_event(
        self, c: Connection, run: RunRecord, w: Wait, now: float
    ) -> JournalEntry | None:
        """An event sent before this wait began: addressed to this run, or broadcast after the
        run was created and matched by a non-empty `match`; never one this run already saw."""
        rows = c.execute(self._sql.held_events, (run.id, w.event, now - self._retention))
        for r in rows.fetchall():
            if r["run_id"] is None and not w.match:
                continue
            if matches(w.match, json.loads(r["data"])):
                return event_entry(run.id, w.step_id, w.name, r["id"], r["data"], now)
        return None

    def complete(
        self, run_id: str, token: str, output: str, entries: Sequence[JournalEntry] = ()
    ) -> None:
        self._finish(run_id, token, RunStatus.COMPLETED, output, None, None, entries)

    def fail(
        self,
        run_id: str,
        token: str,
        error: str,
        failed_step: str | None,
        entries: Sequence[JournalEntry] = (),
    ) -> None:
        self._finish(run_id, token, RunStatus.FAILED, None, error, failed_step, entries)

    def _finish(
        self,
        run_id: str,
        token: str,
        status: RunStatus,
        output: str | None,
        error: str | None,
        failed_step: str | None,
        entries: Sequence[JournalEntry],
    ) -> None:
        self._db.tx(
            lambda c: self._finish_in(c, run_id, token, status, output, error, failed_step, entries)
        )

    def _finish_in(
        self,
        c: Connection,
        run_id: str,
        token: str,
        status: RunStatus,
        output: str | None,
        error: str | None,
        failed_step: str | None,
        entries: Sequence[JournalEntry],
    ) -> None:
        self._lock_parent(c, run_id)
        _, now = self._check_lease(c, run_id, token)
        if entries:
            c.cursor().executemany(self._sql.insert_entry, [entry_row(e) for e in entries])
        [row] = c.execute(
            self._sql.finish, (status.value, output, error, failed_step, now, run_id)
        ).fetchall()
        c.execute(self._sql.drop_waits, (run_id,))
        self._deliver_to_parent(c, to_run(row), now)

    def needs_attention(self, run_id: str, token: str, step_id: str, evidence: str) -> None:
        if not self._db.one(self._sql.needs_attention, (evidence, step_id, run_id, token)):
            raise self._lease_lost(run_id)

    # -- control ------------------------------------------------------------------------

    def cancel(self, run_id: str) -> RunRecord:
        def cancel(c: Connection) -> RunRecord:
            row = self._lock(c, run_id)
            if row["status"] in TERMINAL:
                raise RunStateError(f"run {run_id} is already {row['status']}; nothing to cancel")
            self._cancel_tree(c, run_id, row["db_now"])
            return self._get(c, run_id)

        return self._db.tx(cancel)

    def finish_cancel(self, run_id: str, token: str) -> None:
        def finish_cancel(c: Connection) -> None:
            self._lock_parent(c, run_id)
            row = c.execute(self._sql.lock_leased, (run_id, token)).fetchone()
            if row is None:
                raise LeaseLost(run_id)
            self._mark_cancelled(c, to_run(row), row["db_now"])
            self._cancel_tree(c, run_id, row["db_now"])

        self._db.tx(finish_cancel)

    def _cancel_tree(self, c: Connection, run_id: str, now: float) -> None:
        for row in c.execute(self._sql.tree, (run_id,)).fetchall():
            run = to_run(row)
            if run.status is RunStatus.RUNNING and (run.lease_expires_at or 0) >= now:
                c.execute(self._sql.request_cancel, (run.id,))
            else:
                self._mark_cancelled(c, run, now)

    def _mark_cancelled(self, c: Connection, run: RunRecord, now: float) -> None:
        [row] = c.execute(self._sql.mark_cancelled, (now, run.id)).fetchall()
        c.execute(self._sql.drop_waits, (run.id,))
        self._deliver_to_parent(c, to_run(row), now)

    def retry(self, run_id: str) -> RunRecord:
        def retry(c: Connection) -> RunRecord:
            self._retry(c, run_id)
            self._notify(c)
            return self._get(c, run_id)

        return self._db.tx(retry)

    def _retry(self, c: Connection, run_id: str) -> None:
        row = self._lock(c, run_id)
        if row["status"] != "failed":
            raise RunStateError(
                f"run {run_id} is {row['status']}; only a failed run can be retried"
            )
        if row["failed_step"] is not None:
            failed = c.execute(self._sql.retry_step, (run_id, row["failed_step"])).fetchall()
            if failed and failed[0]["kind"] == "invoke" and failed[0]["ref"]:
                child = c.execute(self._sql.run, (failed[0]["ref"],)).fetchone()
                if child is not None and child["status"] == "failed":
                    self._retry(c, failed[0]["ref"])
        c.execute(self._sql.make_pending, (row["db_now"], run_id))

    def resolve(self, run_id: str, step_id: str, entry: JournalEntry | None) -> RunRecord:
        def resolve(c: Connection) -> RunRecord:
            row = self._lock(c, run_id)
            if row["status"] != "needs_attention":
                raise RunStateError(
                    f"run {run_id} is {row['status']}; only a needs_attention run can be resolved"
                )
            if entry is not None:
                c.execute(self._sql.upsert_entry, entry_row(entry))
            c.execute(self._sql.make_pending, (row["db_now"], run_id))
            self._notify(c)
            return self._get(c, run_id)

        return self._db.tx(resolve)

    def send_event(self, name: str, data: str, run_id: str | None = None) -> EventReceipt:
        payload = json.loads(data)

        def send(c: Connection) -> EventReceipt:
            self._lock_event(c, name)
            if run_id is not None:
                row = c.execute(self._sql.run, (run_id,)).fetchone()
                if row is None:
                    raise RunNotFound(run_id)
                if row["status"] in TERMINAL:
                    raise RunStateError(
                        f"run {run_id} is {row['status']}; an event for it would never be read"
                    )
            [event] = c.execute(self._sql.insert_event, (name, data, run_id)).fetchall()
            event_id, now = event["id"], event["created_at"]
            if run_id is None:
                waits = c.execute(self._sql.event_waits, (name,))
            else:
                waits = c.execute(self._sql.event_waits_of_run, (name, run_id))
            woken: list[str] = []
            for w in waits.fetchall():
                if w["run_id"] in woken or not matches(json.loads(w["match"]), payload):
                    continue
                entry = event_entry(w["run_id"], w["step_id"], w["name"], event_id, data, now)
                self._wake(c, w["run_id"], w["step_id"], entry, now)
                woken.append(w["run_id"])
            return EventReceipt(event_id=event_id, woken=woken)

        return self._db.tx(send)

    # -- helpers ------------------------------------------------------------------------

    def _lock(self, c: Connection, run_id: str) -> Any:
        """The run's row (locked on PostgreSQL), with the database's clock as `db_now`."""
        row = c.execute(self._sql.lock_run, (run_id,)).fetchone()
        if row is None:
            raise RunNotFound(run_id)
        return row

    def _get(self, c: Connection, run_id: str) -> RunRecord:
        return to_run(c.execute(self._sql.run, (run_id,)).fetchone())

    def _check_lease(self, c: Connection, run_id: str, token: str) -> tuple[RunRecord, float]:
        """The run (locked on PostgreSQL) if the lease is ours, and the database's clock."""
        row = c.execute(self._sql.check_lease, (run_id, token)).fetchone()
        if row is None:
            raise self._lease_lost(run_id, c)
        return to_run(row), float(row["db_now"])

    def _lease_lost(self, run_id: str, c: Connection | None = None) -> LeaseLost:
        query, args = self._sql.cancel_requested, (run_id,)
        rows = c.execute(query, args).fetchall() if c is not None else self._db.one(query, args)
        return LeaseLost(run_id, cancel_requested=bool(rows and rows[0]["cancel_requested"]))

    def _wake(
        self, c: Connection, run_id: str, step_id: str, entry: JournalEntry, now: float
    ) -> None:
        """Journal a wait's completion, drop the wait, and make the run pending if parked."""
        c.execute(self._sql.insert_entry_once, entry_row(entry))
        c.execute(self._sql.drop_wait, (run_id, step_id))
        if c.execute(self._sql.wake, (now, run_id)).rowcount:
            self._notify(c)

    def _deliver_to_parent(self, c: Connection, child: RunRecord, now: float) -> None:
        if child.parent_id is None or child.parent_step is None:
            return
        self._lock_run(c, child.parent_id)  # its park holds this lock while it checks the child
        entry = child_entry(child, str(child.meta.get("step_name", child.parent_step)), now)
        self._wake(c, child.parent_id, child.parent_step, entry, now)

    # -- the locks and notifications PostgreSQL needs, which SQLite's writer lock makes moot

    def _lock_run(self, c: Connection, run_id: str) -> None:
        """Hold the run's row until commit."""

    def _lock_parent(self, c: Connection, run_id: str) -> None:
        """Hold the row of the run's parent until commit."""

    def _lock_event(self, c: Connection, name: str) -> None:
        """Serialise a send of `name` with the parks that wait on it."""

    def _notify(self, c: Connection) -> None:
        """Wake idle workers when the transaction commits."""
