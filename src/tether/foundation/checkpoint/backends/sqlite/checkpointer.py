"""The embedded default I2 backend: one SQLite file in WAL mode.

Safe with several worker processes on one machine: every multi-statement change runs under
`BEGIN IMMEDIATE` (SQLite's single writer lock), and a plain step append is one
`INSERT ... SELECT ... WHERE <lease holds>` statement, i.e. one INSERT + COMMIT with the lease
checked in the same statement. Connections are per thread, so the heartbeat thread and the
worker's runs never share one. SQLite has no server clock: the host's clock is the database's.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tether.errors import DatabaseUnavailable, RunNotFound, RunStateError
from tether.foundation.checkpoint.backends.sqlite.connection import ErrorMap
from tether.foundation.checkpoint.backends.sqlite.housekeeping import SqliteHousekeeping
from tether.foundation.checkpoint.backends.sqlite.schema import (
    INSERT_ENTRY,
    INSERT_ENTRY_IF_LEASED,
    JOURNAL_COLS,
    RUNNABLE,
    entry_of,
    migrate,
    row_of,
    run_of,
)
from tether.foundation.checkpoint.contract import (
    TERMINAL,
    Accept,
    Claim,
    EventReceipt,
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


class SqliteCheckpointer(SqliteHousekeeping):
    """I2 on one SQLite file. `url` is `sqlite:///path/to/file.db`."""

    def __init__(
        self,
        url: str,
        synchronous: str = "FULL",
        busy_timeout: float = 10.0,
        event_retention: float = 7 * 24 * 3600.0,
    ) -> None:
        if not url.startswith("sqlite:///"):
            raise DatabaseUnavailable(f"not a SQLite URL: {url!r} (expected sqlite:///path)")
        self.url = url
        self.path = Path(url.removeprefix("sqlite:///"))
        self._synchronous = synchronous
        self._busy_timeout = busy_timeout
        self._error_map = ErrorMap(self.path, busy_timeout)
        self._retention = event_retention
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        with self._errors():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            migrate(self._conn(), self.path)

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> SqliteCheckpointer:
        return cls(
            settings.database_url_for("checkpoint"),
            synchronous=settings.sqlite_synchronous,
            event_retention=settings.event_retention_seconds,
            **options,
        )

    # -- runs ---------------------------------------------------------------------------

    def create_run(self, new: NewRun) -> tuple[RunRecord, bool]:
        now = time.time()
        with self._tx() as c:
            if new.key is not None:
                row = c.execute("SELECT * FROM runs WHERE key = ?", (new.key,)).fetchone()
                if row is not None:
                    return run_of(row), False
            horizon = c.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
            c.execute(
                "INSERT INTO runs (id, workflow, version, status, input, key, parent_id, "
                "parent_step, created_at, updated_at, event_horizon, meta) "
                "VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    new.id,
                    new.workflow,
                    new.version,
                    new.input,
                    new.key,
                    new.parent_id,
                    new.parent_step,
                    now,
                    now,
                    horizon,
                    json.dumps(new.meta),
                ),
            )
            return run_of(c.execute("SELECT * FROM runs WHERE id = ?", (new.id,)).fetchone()), True

    def get_run(self, run_id: str) -> RunRecord:
        with self._errors():
            row = self._conn().execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFound(run_id)
        return run_of(row)

    def list_runs(self, filter: RunFilter) -> list[RunRecord]:
        where, args = ["1=1"], list[Any]()
        if filter.statuses:
            where.append(f"status IN ({','.join('?' * len(filter.statuses))})")
            args += [s.value for s in filter.statuses]
        if filter.workflow:
            where.append("workflow = ?")
            args.append(filter.workflow)
        if filter.parent_id:
            where.append("parent_id = ?")
            args.append(filter.parent_id)
        if filter.finished_before is not None:
            where.append("status IN ('completed', 'failed', 'cancelled') AND updated_at < ?")
            args.append(filter.finished_before)
        sql = (
            f"SELECT * FROM runs WHERE {' AND '.join(where)} "
            "ORDER BY created_at DESC, id DESC LIMIT ?"
        )
        with self._errors():
            rows = self._conn().execute(sql, (*args, filter.limit)).fetchall()
        return [run_of(r) for r in rows]

    def journal(self, run_id: str) -> list[JournalEntry]:
        with self._errors():
            rows = (
                self._conn()
                .execute(
                    f"SELECT {JOURNAL_COLS} FROM journal WHERE run_id = ? "
                    "ORDER BY finished_at, step_id, attempt",
                    (run_id,),
                )
                .fetchall()
            )
        return [entry_of(r) for r in rows]

    # -- execution ----------------------------------------------------------------------

    def claim(
        self,
        owner: str,
        accepts: Sequence[Accept],
        limit: int,
        lease_seconds: float,
        run_id: str | None = None,
    ) -> list[Claim]:
        if not accepts or limit <= 0:
            return []
        now = time.time()
        match = " OR ".join("(workflow = ? AND version GLOB ?)" for _ in accepts)
        args: list[Any] = [now, now]
        for a in accepts:
            args += [a.workflow, a.version]
        sql = f"SELECT * FROM runs WHERE {RUNNABLE} AND ({match})"
        if run_id is not None:
            sql += " AND id = ?"
            args.append(run_id)
        sql += " ORDER BY created_at LIMIT ?"
        args.append(limit)
        claims: list[Claim] = []
        with self._errors():  # most wake-ups find nothing: don't take the write lock for that
            if self._conn().execute(sql, args).fetchone() is None:
                return claims
        with self._tx() as c:
            for row in c.execute(sql, args).fetchall():
                if row["cancel_requested"]:
                    self._mark_cancelled(c, run_of(row), now)
                    continue
                token = uuid.uuid4().hex
                c.execute(
                    "UPDATE runs SET status = 'running', lease_token = ?, lease_owner = ?, "
                    "lease_expires_at = ?, claims = claims + 1, updated_at = ? WHERE id = ?",
                    (token, owner, now + lease_seconds, now, row["id"]),
                )
                run = run_of(row).model_copy(
                    update={
                        "status": RunStatus.RUNNING,
                        "lease_owner": owner,
                        "lease_expires_at": now + lease_seconds,
                        "claims": row["claims"] + 1,
                    }
                )
                entries = [
                    entry_of(r)
                    for r in c.execute(
                        f"SELECT {JOURNAL_COLS} FROM journal WHERE run_id = ?", (row["id"],)
                    )
                ]
                claims.append(Claim(run=run, token=token, journal=entries))
        return claims

    def heartbeat(self, run_id: str, token: str, lease_seconds: float) -> bool:
        with self._errors():
            cur = self._conn().execute(
                "UPDATE runs SET lease_expires_at = ? WHERE id = ? AND lease_token = ?",
                (time.time() + lease_seconds, run_id, token),
            )
        return cur.rowcount == 1

    def append(self, run_id: str, token: str, entries: Sequence[JournalEntry]) -> None:
        if len(entries) == 1:
            with self._errors():
                cur = self._conn().execute(
                    INSERT_ENTRY_IF_LEASED, (*row_of(entries[0]), run_id, token)
                )
            if cur.rowcount != 1:
                raise self._lease_lost(run_id)
            return
        with self._tx() as c:
            self._check_lease(c, run_id, token)
            c.executemany(INSERT_ENTRY, [row_of(e) for e in entries])

    def park(
        self, run_id: str, token: str, waits: Sequence[Wait], entries: Sequence[JournalEntry] = ()
    ) -> list[JournalEntry]:
        now = time.time()
        with self._tx() as c:
            run = self._check_lease(c, run_id, token)
            if entries:
                c.executemany(INSERT_ENTRY, [row_of(e) for e in entries])
            existing = {
                r["step_id"]: r["deadline"]
                for r in c.execute(
                    "SELECT step_id, deadline FROM waits WHERE run_id = ?", (run_id,)
                )
            }
            keep = {w.step_id for w in waits}
            for step_id in existing.keys() - keep:
                c.execute("DELETE FROM waits WHERE run_id = ? AND step_id = ?", (run_id, step_id))
            resolved: list[JournalEntry] = []
            deadlines: list[float] = []
            for w in waits:
                deadline = existing.get(w.step_id, w.deadline)
                entry = self._resolve_wait(c, run, w, deadline, now)
                if entry is not None:
                    resolved.append(entry)
                    c.execute(
                        "DELETE FROM waits WHERE run_id = ? AND step_id = ?", (run_id, w.step_id)
                    )
                    continue
                c.execute(
                    "INSERT OR REPLACE INTO waits (run_id, step_id, name, kind, deadline, event, "
                    "match, child_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        run_id,
                        w.step_id,
                        w.name,
                        w.kind.value,
                        deadline,
                        w.event,
                        json.dumps(w.match),
                        w.child_id,
                    ),
                )
                if deadline is not None:
                    deadlines.append(deadline)
            if resolved:
                return resolved
            status = parked_status(waits).value
            c.execute(
                "UPDATE runs SET status = ?, wake_at = ?, lease_token = NULL, lease_owner = NULL, "
                "lease_expires_at = NULL, updated_at = ? WHERE id = ?",
                (status, min(deadlines) if deadlines else None, now, run_id),
            )
        return []

    def _resolve_wait(
        self, c: sqlite3.Connection, run: RunRecord, w: Wait, deadline: float | None, now: float
    ) -> JournalEntry | None:
        """The wait's completion if it can be had now, journaled; else None."""
        row = c.execute(
            f"SELECT {JOURNAL_COLS} FROM journal WHERE run_id = ? AND step_id = ? "
            "AND status != 'attempt'",
            (run.id, w.step_id),
        ).fetchone()
        if row is not None:  # delivered while the run was running (an event or a child)
            return entry_of(row)
        entry: JournalEntry | None = None
        if w.kind is WaitKind.EVENT:
            entry = self._take_held_event(c, run, w, now)
        elif w.kind is WaitKind.CHILD and w.child_id is not None:
            child_row = c.execute("SELECT * FROM runs WHERE id = ?", (w.child_id,)).fetchone()
            if child_row is not None and child_row["status"] in TERMINAL:
                entry = child_entry(run_of(child_row), w.name, now)
        if entry is None and deadline is not None and deadline <= now:
            entry = deadline_entry(run.id, w, now)
        if entry is not None:
            c.execute(INSERT_ENTRY, row_of(entry))
        return entry

    def _take_held_event(
        self, c: sqlite3.Connection, run: RunRecord, w: Wait, now: float
    ) -> JournalEntry | None:
        """An event sent before this wait began: addressed to this run, or broadcast after the
        run was created and matched by a non-empty `match`; never one this run already saw."""
        horizon = c.execute("SELECT event_horizon FROM runs WHERE id = ?", (run.id,)).fetchone()[0]
        rows = c.execute(
            "SELECT id, data, run_id FROM events WHERE name = ? AND created_at >= ? "
            "AND (run_id = ? OR (run_id IS NULL AND id > ?)) "
            "AND CAST(id AS TEXT) NOT IN (SELECT ref FROM journal WHERE run_id = ? "
            "AND kind = 'event' AND ref IS NOT NULL) ORDER BY id",
            (w.event, now - self._retention, run.id, horizon, run.id),
        ).fetchall()
        for r in rows:
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
        now = time.time()
        with self._tx() as c:
            self._check_lease(c, run_id, token)
            if entries:
                c.executemany(INSERT_ENTRY, [row_of(e) for e in entries])
            c.execute(
                "UPDATE runs SET status = ?, output = ?, error = ?, failed_step = ?, "
                "wake_at = NULL, "
                "lease_token = NULL, lease_owner = NULL, lease_expires_at = NULL, updated_at = ? "
                "WHERE id = ?",
                (status.value, output, error, failed_step, now, run_id),
            )
            c.execute("DELETE FROM waits WHERE run_id = ?", (run_id,))
            self._deliver_to_parent(c, run_id, now)

    def needs_attention(self, run_id: str, token: str, step_id: str, evidence: str) -> None:
        now = time.time()
        with self._tx() as c:
            self._check_lease(c, run_id, token)
            c.execute(
                "UPDATE runs SET status = 'needs_attention', error = ?, failed_step = ?, "
                "lease_token = NULL, lease_owner = NULL, lease_expires_at = NULL, updated_at = ? "
                "WHERE id = ?",
                (evidence, step_id, now, run_id),
            )

    def release(self, run_id: str, token: str) -> None:
        with self._errors():
            self._conn().execute(
                "UPDATE runs SET status = 'pending', lease_token = NULL, lease_owner = NULL, "
                "lease_expires_at = NULL, updated_at = ? WHERE id = ? AND lease_token = ?",
                (time.time(), run_id, token),
            )

    # -- control ------------------------------------------------------------------------

    def cancel(self, run_id: str) -> RunRecord:
        now = time.time()
        with self._tx() as c:
            row = c.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise RunNotFound(run_id)
            if row["status"] in TERMINAL:
                raise RunStateError(f"run {run_id} is already {row['status']}; nothing to cancel")
            self._cancel_tree(c, run_id, now)
            return run_of(c.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone())

    def finish_cancel(self, run_id: str, token: str) -> None:
        now = time.time()
        with self._tx() as c:
            row = c.execute(
                "SELECT * FROM runs WHERE id = ? AND lease_token = ?", (run_id, token)
            ).fetchone()
            if row is None:
                raise LeaseLost(run_id)
            self._mark_cancelled(c, run_of(row), now)
            self._cancel_tree(c, run_id, now)

    def _cancel_tree(self, c: sqlite3.Connection, run_id: str, now: float) -> None:
        rows = c.execute(
            "WITH RECURSIVE tree(id) AS (SELECT ? UNION SELECT r.id FROM runs r JOIN tree "
            "ON r.parent_id = tree.id) SELECT * FROM runs WHERE id IN tree "
            "AND status NOT IN ('completed', 'failed', 'cancelled')",
            (run_id,),
        ).fetchall()
        for row in rows:
            run = run_of(row)
            live = run.status is RunStatus.RUNNING and (run.lease_expires_at or 0) >= now
            if live:
                c.execute("UPDATE runs SET cancel_requested = 1 WHERE id = ?", (run.id,))
            else:
                self._mark_cancelled(c, run, now)

    def _mark_cancelled(self, c: sqlite3.Connection, run: RunRecord, now: float) -> None:
        c.execute(
            "UPDATE runs SET status = 'cancelled', cancel_requested = 1, wake_at = NULL, "
            "lease_token = NULL, lease_owner = NULL, lease_expires_at = NULL, updated_at = ? "
            "WHERE id = ?",
            (now, run.id),
        )
        c.execute("DELETE FROM waits WHERE run_id = ?", (run.id,))
        self._deliver_to_parent(c, run.id, now)

    def retry(self, run_id: str) -> RunRecord:
        now = time.time()
        with self._tx() as c:
            self._retry(c, run_id, now)
            return run_of(c.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone())

    def _retry(self, c: sqlite3.Connection, run_id: str, now: float) -> None:
        row = c.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFound(run_id)
        if row["status"] != "failed":
            raise RunStateError(
                f"run {run_id} is {row['status']}; only a failed run can be retried"
            )
        step = row["failed_step"]
        if step is not None:
            failed = c.execute(
                "SELECT kind, ref FROM journal WHERE run_id = ? AND step_id = ? "
                "AND status = 'error'",
                (run_id, step),
            ).fetchone()
            c.execute(
                "UPDATE journal SET status = 'attempt' WHERE run_id = ? AND step_id = ? "
                "AND status = 'error'",
                (run_id, step),
            )
            if failed is not None and failed["kind"] == "invoke" and failed["ref"]:
                child = c.execute(
                    "SELECT status FROM runs WHERE id = ?", (failed["ref"],)
                ).fetchone()
                if child is not None and child["status"] == "failed":
                    self._retry(c, failed["ref"], now)
        c.execute(
            "UPDATE runs SET status = 'pending', error = NULL, failed_step = NULL, updated_at = ? "
            "WHERE id = ?",
            (now, run_id),
        )

    def resolve(self, run_id: str, step_id: str, entry: JournalEntry | None) -> RunRecord:
        now = time.time()
        with self._tx() as c:
            row = c.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise RunNotFound(run_id)
            if row["status"] != "needs_attention":
                raise RunStateError(
                    f"run {run_id} is {row['status']}; only a needs_attention run can be resolved"
                )
            if entry is not None:
                c.execute(INSERT_ENTRY.replace("INSERT", "INSERT OR REPLACE"), row_of(entry))
            c.execute(
                "UPDATE runs SET status = 'pending', error = NULL, failed_step = NULL, "
                "updated_at = ? WHERE id = ?",
                (now, run_id),
            )
            return run_of(c.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone())

    def send_event(self, name: str, data: str, run_id: str | None = None) -> EventReceipt:
        now = time.time()
        payload = json.loads(data)
        with self._tx() as c:
            if run_id is not None:
                row = c.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
                if row is None:
                    raise RunNotFound(run_id)
                if row["status"] in TERMINAL:
                    raise RunStateError(
                        f"run {run_id} is {row['status']}; an event for it would never be read"
                    )
            event_id = c.execute(
                "INSERT INTO events (name, data, run_id, created_at) VALUES (?, ?, ?, ?)",
                (name, data, run_id, now),
            ).lastrowid
            assert event_id is not None
            sql = (
                "SELECT w.run_id, w.step_id, w.name, w.match, r.status FROM waits w "
                "JOIN runs r ON r.id = w.run_id WHERE w.kind = 'event' AND w.event = ? "
                "AND r.status NOT IN ('completed', 'failed', 'cancelled')"
            )
            args: list[Any] = [name]
            if run_id is not None:
                sql += " AND w.run_id = ?"
                args.append(run_id)
            woken: list[str] = []
            for w in c.execute(sql + " ORDER BY r.created_at, w.step_id", args).fetchall():
                if w["run_id"] in woken or not matches(json.loads(w["match"]), payload):
                    continue
                entry = event_entry(w["run_id"], w["step_id"], w["name"], event_id, data, now)
                c.execute(INSERT_ENTRY.replace("INSERT", "INSERT OR IGNORE"), row_of(entry))
                c.execute(
                    "DELETE FROM waits WHERE run_id = ? AND step_id = ?",
                    (w["run_id"], w["step_id"]),
                )
                c.execute(
                    "UPDATE runs SET status = 'pending', wake_at = NULL, updated_at = ? "
                    "WHERE id = ? AND status IN ('waiting', 'sleeping', 'paused')",
                    (now, w["run_id"]),
                )
                woken.append(w["run_id"])
        return EventReceipt(event_id=event_id, woken=woken)

    # -- helpers ------------------------------------------------------------------------

    def _check_lease(self, c: sqlite3.Connection, run_id: str, token: str) -> RunRecord:
        row = c.execute(
            "SELECT * FROM runs WHERE id = ? AND lease_token = ? AND cancel_requested = 0",
            (run_id, token),
        ).fetchone()
        if row is None:
            raise self._lease_lost(run_id, c)
        return run_of(row)

    def _lease_lost(self, run_id: str, c: sqlite3.Connection | None = None) -> LeaseLost:
        conn = c or self._conn()
        row = conn.execute("SELECT cancel_requested FROM runs WHERE id = ?", (run_id,)).fetchone()
        return LeaseLost(run_id, cancel_requested=bool(row and row[0]))

    def _deliver_to_parent(self, c: sqlite3.Connection, run_id: str, now: float) -> None:
        row = c.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        child = run_of(row)
        if child.parent_id is None or child.parent_step is None:
            return
        entry = child_entry(child, str(child.meta.get("step_name", child.parent_step)), now)
        c.execute(INSERT_ENTRY.replace("INSERT", "INSERT OR IGNORE"), row_of(entry))
        c.execute(
            "DELETE FROM waits WHERE run_id = ? AND step_id = ?",
            (child.parent_id, child.parent_step),
        )
        c.execute(
            "UPDATE runs SET status = 'pending', wake_at = NULL, updated_at = ? "
            "WHERE id = ? AND status IN ('waiting', 'sleeping', 'paused')",
            (now, child.parent_id),
        )
