"""The embedded default I2 backend: one SQLite file in WAL mode.

Safe with several worker processes on one machine: every multi-statement change runs under
`BEGIN IMMEDIATE` (SQLite's single writer lock), and a plain step append is one
`INSERT ... SELECT ... WHERE <lease holds>` statement, i.e. one INSERT + COMMIT with the lease
checked in the same statement. Connections are per thread, so the heartbeat thread and the
worker's runs never share one. SQLite has no server clock: the host's clock is the database's.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tether.errors import DatabaseUnavailable, RunNotFound, RunStateError, SchemaVersionError
from tether.foundation.checkpoint.contract import (
    BLOB_REF,
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
    blob_address,
)
from tether.foundation.checkpoint.events import (
    child_entry,
    deadline_entry,
    event_entry,
    matches,
    parked_status,
)

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    workflow TEXT NOT NULL,
    version TEXT NOT NULL,
    status TEXT NOT NULL,
    input TEXT NOT NULL,
    output TEXT,
    error TEXT,
    failed_step TEXT,
    key TEXT UNIQUE,
    parent_id TEXT,
    parent_step TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    wake_at REAL,
    lease_token TEXT,
    lease_owner TEXT,
    lease_expires_at REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    claims INTEGER NOT NULL DEFAULT 0,
    event_horizon INTEGER NOT NULL DEFAULT 0,
    meta TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status, wake_at);
CREATE INDEX IF NOT EXISTS runs_by_parent ON runs (parent_id);
CREATE TABLE IF NOT EXISTS journal (
    run_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    value TEXT,
    error TEXT,
    input TEXT,
    ref TEXT,
    started_at REAL NOT NULL,
    finished_at REAL NOT NULL,
    PRIMARY KEY (run_id, step_id, attempt)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS waits (
    run_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    deadline REAL,
    event TEXT,
    match TEXT NOT NULL DEFAULT '{}',
    child_id TEXT,
    PRIMARY KEY (run_id, step_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS waits_by_event ON waits (event);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    data TEXT NOT NULL,
    run_id TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_name ON events (name, id);
"""

# Forward migrations: _MIGRATIONS[v] takes a database at version v to v + 1.
_MIGRATIONS = {
    1: """
CREATE TABLE IF NOT EXISTS schedules (
    name TEXT PRIMARY KEY,
    cron TEXT NOT NULL,
    workflow TEXT NOT NULL,
    input TEXT NOT NULL,
    catchup TEXT NOT NULL,
    next_at REAL NOT NULL,
    created_at REAL NOT NULL
);
""",
}

_JOURNAL_COLS = (
    "run_id, step_id, attempt, kind, name, status, value, error, input, ref, "
    "started_at, finished_at"
)
_INSERT_ENTRY = f"INSERT INTO journal ({_JOURNAL_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
_INSERT_ENTRY_IF_LEASED = (
    f"INSERT INTO journal ({_JOURNAL_COLS}) SELECT ?,?,?,?,?,?,?,?,?,?,?,? "
    "WHERE EXISTS (SELECT 1 FROM runs WHERE id = ? AND lease_token = ? AND cancel_requested = 0)"
)
_RUNNABLE = (
    "(status = 'pending' OR (status IN ('sleeping', 'waiting') AND wake_at <= ?) "
    "OR (status = 'running' AND lease_expires_at < ?))"
)


def _row(entry: JournalEntry) -> tuple[Any, ...]:
    return (
        entry.run_id,
        entry.step_id,
        entry.attempt,
        entry.kind.value,
        entry.name,
        entry.status.value,
        entry.value,
        entry.error,
        entry.input,
        entry.ref,
        entry.started_at,
        entry.finished_at,
    )


def _entry(r: sqlite3.Row) -> JournalEntry:
    return JournalEntry.model_construct(
        run_id=r[0],
        step_id=r[1],
        attempt=r[2],
        kind=EntryKind(r[3]),
        name=r[4],
        status=EntryStatus(r[5]),
        value=r[6],
        error=r[7],
        input=r[8],
        ref=r[9],
        started_at=r[10],
        finished_at=r[11],
    )


def _run(r: sqlite3.Row) -> RunRecord:
    return RunRecord(
        id=r["id"],
        workflow=r["workflow"],
        version=r["version"],
        status=r["status"],
        input=r["input"],
        output=r["output"],
        error=r["error"],
        failed_step=r["failed_step"],
        key=r["key"],
        parent_id=r["parent_id"],
        parent_step=r["parent_step"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
        wake_at=r["wake_at"],
        lease_owner=r["lease_owner"],
        lease_expires_at=r["lease_expires_at"],
        cancel_requested=bool(r["cancel_requested"]),
        claims=r["claims"],
        meta=json.loads(r["meta"]),
    )


class SqliteCheckpointer:
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
        self._retention = event_retention
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        with self._errors():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._migrate(self._conn())

    @classmethod
    def from_settings(cls, settings: Any) -> SqliteCheckpointer:
        return cls(
            settings.database_url_for("checkpoint"),
            synchronous=settings.sqlite_synchronous,
            event_retention=settings.event_retention_seconds,
        )

    # -- connection handling -------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path,
                isolation_level=None,
                check_same_thread=False,
                timeout=self._busy_timeout,
            )
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.IntegrityError as e:  # an entry written twice: the caller's, not the file's
            raise RunStateError(f"already exists: {e}") from e
        except sqlite3.DatabaseError as e:
            msg = str(e)
            if "locked" in msg or "busy" in msg:
                raise DatabaseUnavailable(
                    f"database {self.path} is locked by another process "
                    f"(waited {self._busy_timeout:g} s): {msg}"
                ) from e
            if "not a database" in msg or "malformed" in msg or "corrupt" in msg:
                raise DatabaseUnavailable(
                    f"database {self.path} is corrupt or not a tether database ({msg}); "
                    "move it aside or point TETHER_DATABASE_URL elsewhere"
                ) from e
            raise DatabaseUnavailable(f"database {self.path} cannot be used: {msg}") from e

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        with self._errors():
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _migrate(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"database {self.path} has schema version {version}; this tether understands "
                f"up to {SCHEMA_VERSION}: upgrade tether"
            )
        if version == 0:
            conn.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} PRAGMA user_version=1; COMMIT;")
            version = 1
        while version < SCHEMA_VERSION:
            conn.executescript(
                f"BEGIN IMMEDIATE; {_MIGRATIONS[version]} PRAGMA user_version={version + 1}; "
                "COMMIT;"
            )
            version += 1

    def wait_for_work(self, timeout: float) -> None:
        """SQLite cannot notify another process: the worker's poll interval is the latency."""
        time.sleep(timeout)

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._all.clear()
        self._local = threading.local()

    # -- runs ---------------------------------------------------------------------------

    def create_run(self, new: NewRun) -> tuple[RunRecord, bool]:
        now = time.time()
        with self._tx() as c:
            if new.key is not None:
                row = c.execute("SELECT * FROM runs WHERE key = ?", (new.key,)).fetchone()
                if row is not None:
                    return _run(row), False
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
            return _run(c.execute("SELECT * FROM runs WHERE id = ?", (new.id,)).fetchone()), True

    def get_run(self, run_id: str) -> RunRecord:
        with self._errors():
            row = self._conn().execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFound(run_id)
        return _run(row)

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
        return [_run(r) for r in rows]

    def journal(self, run_id: str) -> list[JournalEntry]:
        with self._errors():
            rows = (
                self._conn()
                .execute(
                    f"SELECT {_JOURNAL_COLS} FROM journal WHERE run_id = ? "
                    "ORDER BY finished_at, step_id, attempt",
                    (run_id,),
                )
                .fetchall()
            )
        return [_entry(r) for r in rows]

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
        sql = f"SELECT * FROM runs WHERE {_RUNNABLE} AND ({match})"
        if run_id is not None:
            sql += " AND id = ?"
            args.append(run_id)
        sql += " ORDER BY created_at LIMIT ?"
        args.append(limit)
        claims: list[Claim] = []
        with self._tx() as c:
            for row in c.execute(sql, args).fetchall():
                if row["cancel_requested"]:
                    self._mark_cancelled(c, _run(row), now)
                    continue
                token = uuid.uuid4().hex
                c.execute(
                    "UPDATE runs SET status = 'running', lease_token = ?, lease_owner = ?, "
                    "lease_expires_at = ?, claims = claims + 1, updated_at = ? WHERE id = ?",
                    (token, owner, now + lease_seconds, now, row["id"]),
                )
                run = _run(row).model_copy(
                    update={
                        "status": RunStatus.RUNNING,
                        "lease_owner": owner,
                        "lease_expires_at": now + lease_seconds,
                        "claims": row["claims"] + 1,
                    }
                )
                entries = [
                    _entry(r)
                    for r in c.execute(
                        f"SELECT {_JOURNAL_COLS} FROM journal WHERE run_id = ?", (row["id"],)
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
                    _INSERT_ENTRY_IF_LEASED, (*_row(entries[0]), run_id, token)
                )
            if cur.rowcount != 1:
                raise self._lease_lost(run_id)
            return
        with self._tx() as c:
            self._check_lease(c, run_id, token)
            c.executemany(_INSERT_ENTRY, [_row(e) for e in entries])

    def park(
        self, run_id: str, token: str, waits: Sequence[Wait], entries: Sequence[JournalEntry] = ()
    ) -> list[JournalEntry]:
        now = time.time()
        with self._tx() as c:
            run = self._check_lease(c, run_id, token)
            if entries:
                c.executemany(_INSERT_ENTRY, [_row(e) for e in entries])
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
            f"SELECT {_JOURNAL_COLS} FROM journal WHERE run_id = ? AND step_id = ? "
            "AND status != 'attempt'",
            (run.id, w.step_id),
        ).fetchone()
        if row is not None:  # delivered while the run was running (an event or a child)
            return _entry(row)
        entry: JournalEntry | None = None
        if w.kind is WaitKind.EVENT:
            entry = self._take_held_event(c, run, w, now)
        elif w.kind is WaitKind.CHILD and w.child_id is not None:
            child_row = c.execute("SELECT * FROM runs WHERE id = ?", (w.child_id,)).fetchone()
            if child_row is not None and child_row["status"] in TERMINAL:
                entry = child_entry(_run(child_row), w.name, now)
        if entry is None and deadline is not None and deadline <= now:
            entry = deadline_entry(run.id, w, now)
        if entry is not None:
            c.execute(_INSERT_ENTRY, _row(entry))
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
                c.executemany(_INSERT_ENTRY, [_row(e) for e in entries])
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
            return _run(c.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone())

    def finish_cancel(self, run_id: str, token: str) -> None:
        now = time.time()
        with self._tx() as c:
            row = c.execute(
                "SELECT * FROM runs WHERE id = ? AND lease_token = ?", (run_id, token)
            ).fetchone()
            if row is None:
                raise LeaseLost(run_id)
            self._mark_cancelled(c, _run(row), now)
            self._cancel_tree(c, run_id, now)

    def _cancel_tree(self, c: sqlite3.Connection, run_id: str, now: float) -> None:
        rows = c.execute(
            "WITH RECURSIVE tree(id) AS (SELECT ? UNION SELECT r.id FROM runs r JOIN tree "
            "ON r.parent_id = tree.id) SELECT * FROM runs WHERE id IN tree "
            "AND status NOT IN ('completed', 'failed', 'cancelled')",
            (run_id,),
        ).fetchall()
        for row in rows:
            run = _run(row)
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
            return _run(c.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone())

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
                c.execute(_INSERT_ENTRY.replace("INSERT", "INSERT OR REPLACE"), _row(entry))
            c.execute(
                "UPDATE runs SET status = 'pending', error = NULL, failed_step = NULL, "
                "updated_at = ? WHERE id = ?",
                (now, run_id),
            )
            return _run(c.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone())

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
                c.execute(_INSERT_ENTRY.replace("INSERT", "INSERT OR IGNORE"), _row(entry))
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

    # -- housekeeping -------------------------------------------------------------------

    def prune(self, finished_before: float) -> Pruned:
        with self._tx() as c:
            ids = [
                r[0]
                for r in c.execute(
                    "SELECT id FROM runs WHERE status IN ('completed', 'failed', 'cancelled') "
                    "AND updated_at < ?",
                    (finished_before,),
                )
            ]
            entries = 0
            for chunk in (ids[i : i + 500] for i in range(0, len(ids), 500)):
                marks = ",".join("?" * len(chunk))
                entries += c.execute(
                    f"DELETE FROM journal WHERE run_id IN ({marks})", chunk
                ).rowcount
                c.execute(f"DELETE FROM waits WHERE run_id IN ({marks})", chunk)
                c.execute(f"DELETE FROM runs WHERE id IN ({marks})", chunk)
            events = c.execute(
                "DELETE FROM events WHERE created_at < ?", (time.time() - self._retention,)
            ).rowcount
        return Pruned(run_ids=ids, entries=entries, events=events)

    def blob_refs(self) -> set[str]:
        like = BLOB_REF + "%"
        with self._errors():
            conn = self._conn()
            texts = [
                r[0]
                for r in conn.execute(
                    "SELECT input FROM runs WHERE input LIKE ? UNION ALL "
                    "SELECT output FROM runs WHERE output LIKE ? UNION ALL "
                    "SELECT value FROM journal WHERE value LIKE ? UNION ALL "
                    "SELECT input FROM journal WHERE input LIKE ?",
                    (like,) * 4,
                )
            ]
        return {a for t in texts if (a := blob_address(t))}

    # -- schedules ----------------------------------------------------------------------

    def put_schedule(self, schedule: Schedule) -> None:
        with self._tx() as c:
            c.execute(
                "INSERT OR REPLACE INTO schedules (name, cron, workflow, input, catchup, next_at, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    schedule.name,
                    schedule.cron,
                    schedule.workflow,
                    schedule.input,
                    schedule.catchup,
                    schedule.next_at,
                    schedule.created_at,
                ),
            )

    def schedules(self) -> list[Schedule]:
        with self._errors():
            rows = self._conn().execute("SELECT * FROM schedules ORDER BY name").fetchall()
        return [Schedule(**dict(r)) for r in rows]

    def delete_schedule(self, name: str) -> bool:
        with self._errors():
            cur = self._conn().execute("DELETE FROM schedules WHERE name = ?", (name,))
        return cur.rowcount == 1

    def advance_schedule(self, name: str, expected_next_at: float, next_at: float) -> bool:
        with self._errors():
            cur = self._conn().execute(
                "UPDATE schedules SET next_at = ? WHERE name = ? AND next_at = ?",
                (next_at, name, expected_next_at),
            )
        return cur.rowcount == 1

    # -- helpers ------------------------------------------------------------------------

    def _check_lease(self, c: sqlite3.Connection, run_id: str, token: str) -> RunRecord:
        row = c.execute(
            "SELECT * FROM runs WHERE id = ? AND lease_token = ? AND cancel_requested = 0",
            (run_id, token),
        ).fetchone()
        if row is None:
            raise self._lease_lost(run_id, c)
        return _run(row)

    def _lease_lost(self, run_id: str, c: sqlite3.Connection | None = None) -> LeaseLost:
        conn = c or self._conn()
        row = conn.execute("SELECT cancel_requested FROM runs WHERE id = ?", (run_id,)).fetchone()
        return LeaseLost(run_id, cancel_requested=bool(row and row[0]))

    def _deliver_to_parent(self, c: sqlite3.Connection, run_id: str, now: float) -> None:
        row = c.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        child = _run(row)
        if child.parent_id is None or child.parent_step is None:
            return
        entry = child_entry(child, str(child.meta.get("step_name", child.parent_step)), now)
        c.execute(_INSERT_ENTRY.replace("INSERT", "INSERT OR IGNORE"), _row(entry))
        c.execute(
            "DELETE FROM waits WHERE run_id = ? AND step_id = ?",
            (child.parent_id, child.parent_step),
        )
        c.execute(
            "UPDATE runs SET status = 'pending', wake_at = NULL, updated_at = ? "
            "WHERE id = ? AND status IN ('waiting', 'sleeping', 'paused')",
            (now, child.parent_id),
        )
