"""The embedded default I2 backend: one SQLite file in WAL mode; the run-state control flow is
`checkpoint/sql/`'s.

Safe with several worker processes on one machine: every multi-statement change runs under
`BEGIN IMMEDIATE` (SQLite's single writer lock, which is why the dialect takes no row locks),
and a plain step append is one `INSERT ... SELECT ... FROM runs WHERE <lease holds>` statement,
i.e. one INSERT + COMMIT with the lease checked in the same statement. Connections are per
thread, so the heartbeat thread and the worker's runs never share one. SQLite has no server
clock: the host's clock is the database's.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tether.errors import DatabaseUnavailable
from tether.foundation.checkpoint.backends.sqlite.connection import SqliteDatabase
from tether.foundation.checkpoint.backends.sqlite.housekeeping import SqliteHousekeeping
from tether.foundation.checkpoint.backends.sqlite.schedules import SqliteSchedules
from tether.foundation.checkpoint.backends.sqlite.schema import migrate
from tether.foundation.checkpoint.contract import Accept, Claim, NewRun, RunRecord
from tether.foundation.checkpoint.queues import Queue
from tether.foundation.checkpoint.sql.dialect import Dialect
from tether.foundation.checkpoint.sql.forks import ForkStatements, SqlForks
from tether.foundation.checkpoint.sql.queues import QueueStatements, SqlQueues
from tether.foundation.checkpoint.sql.rows import COLS, to_entry, to_run
from tether.foundation.checkpoint.sql.starts import SqlStarts, StartStatements
from tether.foundation.checkpoint.sql.streams import SqlStreams, StreamStatements
from tether.foundation.checkpoint.sql.threads import SqlThreads, ThreadStatements
from tether.foundation.checkpoint.sql.workers import SqlWorkers

_RUNNABLE = (
    "((status = 'pending' AND (start_at IS NULL OR start_at <= ?)) "
    "OR (status IN ('sleeping', 'waiting') AND wake_at <= ?) "
    "OR (status = 'running' AND lease_expires_at < ?))"
)


class SqliteCheckpointer(
    SqliteSchedules,
    SqliteHousekeeping,
    SqlForks[SqliteDatabase],
    SqlQueues[SqliteDatabase],
    SqlStarts[SqliteDatabase],
    SqlStreams[SqliteDatabase],
    SqlThreads[SqliteDatabase],
    SqlWorkers[SqliteDatabase],
):
    """I2 on one SQLite file. `url` is `sqlite:///path/to/file.db`."""

    _sql = Dialect(
        placeholder="?",
        now="tether_now()",
        for_update="",
        for_key_share="",
        glob="GLOB",
        pattern=str,
    )
    _threads_sql = ThreadStatements("?", one_writer=True)
    _streams = StreamStatements(placeholder="?", now="tether_now()")
    _forks = ForkStatements(placeholder="?", now="tether_now()")
    _queues = QueueStatements(placeholder="?", skip_locked="")
    _starts = StartStatements(placeholder="?", now="tether_now()", for_update="")

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
        self._retention = event_retention
        self._db = SqliteDatabase(self.path, synchronous, busy_timeout)
        with self._db.errors:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            migrate(self._db.conn(), self.path)

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> SqliteCheckpointer:
        return cls(
            settings.database_url_for("checkpoint"),
            synchronous=settings.sqlite_synchronous,
            event_retention=settings.event_retention_seconds,
            **options,
        )

    def create_run(self, new: NewRun) -> tuple[RunRecord, bool]:
        if new.debounce is not None or new.throttle is not None:
            return self._create_later(new)
        now = time.time()
        with self._db.transaction() as c:
            if new.key is not None:
                row = c.execute("SELECT * FROM runs WHERE key = ?", (new.key,)).fetchone()
                if row is not None:
                    return to_run(row), False
            row = c.execute(
                "INSERT INTO runs (id, workflow, version, status, input, key, parent_id, "
                "parent_step, created_at, updated_at, event_horizon, meta, queue, queue_key, "
                "priority) VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, "
                "(SELECT COALESCE(MAX(id), 0) FROM events), ?, ?, ?, ?) RETURNING *",
                (new.id, new.workflow, new.version, new.input, new.key, new.parent_id,
                 new.parent_step, now, now, json.dumps(new.meta), new.queue, new.queue_key,
                 new.priority),
            ).fetchall()  # fmt: skip
            return to_run(row[0]), True

    def claim(
        self,
        owner: str,
        accepts: Sequence[Accept],
        limit: int,
        lease_seconds: float,
        run_id: str | None = None,
        queues: Sequence[Queue] = (),
    ) -> list[Claim]:
        if not accepts or limit <= 0:
            return []
        now = time.time()
        match = " OR ".join("(workflow = ? AND version GLOB ?)" for _ in accepts)
        args: list[Any] = [now, now, now]
        for a in accepts:
            args += [a.workflow, a.version]
        cond = f"{_RUNNABLE} AND ({match})"
        if run_id is not None:
            cond += " AND id = ?"
            args.append(run_id)
        names = [q.name for q in queues]
        known = f"(queue IS NULL OR queue IN ({', '.join('?' * len(names))}))" if names else ""
        peek = f"SELECT 1 FROM runs WHERE {cond} AND {known or 'queue IS NULL'} LIMIT 1"
        claims: list[Claim] = []
        if not self._db.one(peek, [*args, *names]):  # most wake-ups find nothing: no write lock
            return claims
        unqueued = f"SELECT * FROM runs WHERE {cond} AND queue IS NULL ORDER BY created_at LIMIT ?"
        with self._db.transaction() as c:
            rows = self._pick_queued(c, queues, cond, args, now, limit)
            if len(rows) < limit:
                rows += c.execute(unqueued, [*args, limit - len(rows)]).fetchall()
            for row in rows:
                if row["cancel_requested"]:
                    self._mark_cancelled(c, to_run(row), now)
                    continue
                token = uuid.uuid4().hex
                [claimed] = c.execute(
                    "UPDATE runs SET status = 'running', lease_token = ?, lease_owner = ?, "
                    "lease_expires_at = ?, claims = claims + 1, updated_at = ?, "
                    "started_at = COALESCE(started_at, ?) WHERE id = ? RETURNING *",
                    (token, owner, now + lease_seconds, now, now, row["id"]),
                ).fetchall()
                entries = [
                    to_entry(r)
                    for r in c.execute(f"SELECT {COLS} FROM journal WHERE run_id = ?", (row["id"],))
                ]
                claims.append(Claim(run=to_run(claimed), token=token, journal=entries))
        return claims

    def release(self, run_id: str, token: str) -> None:
        self._db.one(
            "UPDATE runs SET status = 'pending', lease_token = NULL, lease_owner = NULL, "
            "lease_expires_at = NULL, updated_at = ? WHERE id = ? AND lease_token = ?",
            (time.time(), run_id, token),
        )
