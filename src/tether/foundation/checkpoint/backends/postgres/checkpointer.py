"""PostgresCheckpointer: I2 on PostgreSQL; the run-state control flow is `checkpoint/sql/`'s.

What is PostgreSQL's own lives here: the dialect (`%s`, the database's clock, row locks), a
claim as one `UPDATE ... FROM (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING` with leases
expiring by the database's clock, a run created and announced in one statement, and the lock
hooks: a finishing child locks its parent's row first, a send and a park of one event name
share an advisory lock, and transactions that make a run runnable NOTIFY the schema's channel.
A plain append is one `INSERT ... SELECT ... FROM runs WHERE <lease holds> FOR KEY SHARE`, and
a shared commit one statement for the whole batch (`commits.py`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from typing import Any

from tether.errors import RunStateError
from tether.foundation.checkpoint.backends.postgres import commits
from tether.foundation.checkpoint.backends.postgres.database import NOW as _NOW
from tether.foundation.checkpoint.backends.postgres.database import Conn, Database
from tether.foundation.checkpoint.backends.postgres.housekeeping import PostgresHousekeeping
from tether.foundation.checkpoint.backends.postgres.schedules import PostgresSchedules
from tether.foundation.checkpoint.contract import (
    Accept,
    Append,
    Claim,
    JournalEntry,
    NewRun,
    RunRecord,
)
from tether.foundation.checkpoint.queues import Queue
from tether.foundation.checkpoint.sql.dialect import Connection, Dialect
from tether.foundation.checkpoint.sql.forks import ForkStatements, SqlForks
from tether.foundation.checkpoint.sql.queues import QueueStatements, SqlQueues
from tether.foundation.checkpoint.sql.rows import COLS, entry_row, to_entry, to_run
from tether.foundation.checkpoint.sql.starts import SqlStarts, StartStatements
from tether.foundation.checkpoint.sql.streams import SqlStreams, StreamStatements
from tether.foundation.checkpoint.sql.threads import SqlThreads, ThreadStatements
from tether.foundation.checkpoint.sql.workers import SqlWorkers

_RUNNABLE = (
    f"((status = 'pending' AND (start_at IS NULL OR start_at <= {_NOW})) "
    f"OR (status IN ('sleeping', 'waiting') AND wake_at <= {_NOW}) "
    f"OR (status = 'running' AND lease_expires_at < {_NOW}))"
)


# The journal entry's value is the offset the value took (`CAST(s.seq AS TEXT)`).
_APPEND_STREAM = (
    "WITH r AS (SELECT claims FROM runs WHERE id = %s AND lease_token = %s "
    "AND NOT cancel_requested FOR KEY SHARE), "
    "o AS (SELECT COALESCE(MAX(seq), -1) + 1 AS seq FROM streams WHERE run_id = %s AND key = %s), "
    "s AS (INSERT INTO streams (run_id, key, seq, value, attempt, written_at) "
    f"SELECT %s, %s, o.seq, %s, r.claims, {_NOW} FROM r, o RETURNING seq), "
    f"j AS (INSERT INTO journal ({COLS}) SELECT %s, %s, %s, %s, %s, %s, CAST(s.seq AS TEXT), "
    "%s, %s, %s, %s, %s FROM s) "
    "SELECT s.seq, pg_notify(%s, '') FROM s"
)


_JOURNALS = (
    f"SELECT {COLS} FROM journal WHERE run_id = ANY(%s) ORDER BY finished_at, step_id, attempt"
)


def _journals(run_ids: list[str], found: Iterable[Any]) -> dict[str, list[JournalEntry]]:
    """The runs' journals from their rows, in the order they were written."""
    journals: dict[str, list[JournalEntry]] = {run_id: [] for run_id in run_ids}
    for e in found:
        journals[e["run_id"]].append(to_entry(e))
    return journals


def _claims(rows: list[Any], journals: dict[str, list[JournalEntry]]) -> list[Claim]:
    """Claimed rows handed out by priority, then age."""
    rows.sort(key=lambda r: (-r["priority"], r["created_at"]))
    return [
        Claim(run=to_run(r), token=r["lease_token"], journal=journals.get(r["id"], []))
        for r in rows
    ]


def _like(glob: str) -> str:
    """A version glob (`1.2.*`) as a LIKE pattern."""
    escaped = glob.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


class PostgresCheckpointer(
    PostgresSchedules,
    PostgresHousekeeping,
    SqlForks[Database],
    SqlQueues[Database],
    SqlStarts[Database],
    SqlStreams[Database],
    SqlThreads[Database],
    SqlWorkers[Database],
):
    """I2 on PostgreSQL. `url` is `postgresql://user[:password]@host[:port]/db`; `schema`
    (created if missing) keeps deployments or tests sharing one database apart. A lost
    connection is retried with backoff for `reconnect_seconds` before a call fails."""

    _sql = Dialect(
        placeholder="%s",
        now=_NOW,
        for_update=" FOR UPDATE",
        for_key_share=" FOR KEY SHARE",
        glob="LIKE",
        pattern=_like,
    )
    _threads_sql = ThreadStatements("%s", one_writer=False)
    _streams = StreamStatements(placeholder="%s", now=_NOW)
    _forks = ForkStatements(placeholder="%s", now=_NOW)
    _queues = QueueStatements(placeholder="%s", skip_locked=" FOR UPDATE SKIP LOCKED")
    _starts = StartStatements(placeholder="%s", now=_NOW, for_update=" FOR UPDATE")

    def __init__(
        self,
        url: str,
        schema: str | None = None,
        event_retention: float = 7 * 24 * 3600.0,
        pool_size: int = 10,
        connect_timeout: float = 5.0,
        reconnect_seconds: float = 30.0,
    ) -> None:
        self._db = Database(url, schema, pool_size, connect_timeout, reconnect_seconds)
        self.url, self.schema, self.channel = url, self._db.schema, self._db.channel
        self._retention = event_retention

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> PostgresCheckpointer:
        """`TETHER_CHECKPOINT_SCHEMA`, else `TETHER_DATABASE_SCHEMA`, else the URL's search_path;
        `TETHER_CHECKPOINT_RECONNECT_SECONDS` (default 30) how long a lost server is waited for."""
        extra = settings.model_extra or {}
        schema = (
            os.environ.get("TETHER_CHECKPOINT_SCHEMA")
            or extra.get("checkpoint_schema")
            or os.environ.get("TETHER_DATABASE_SCHEMA")
            or extra.get("database_schema")
        )
        reconnect = os.environ.get("TETHER_CHECKPOINT_RECONNECT_SECONDS") or extra.get(
            "checkpoint_reconnect_seconds"
        )
        if reconnect is not None:
            options.setdefault("reconnect_seconds", float(reconnect))
        return cls(
            settings.database_url_for("checkpoint"),
            schema=schema or None,
            event_retention=settings.event_retention_seconds,
            **options,
        )

    def create_run(self, new: NewRun) -> tuple[RunRecord, bool]:
        if new.debounce is not None or new.throttle is not None:
            return self._create_later(new)
        rows = self._db.one(
            "WITH ins AS (INSERT INTO runs (id, workflow, version, status, input, key, parent_id, "
            "parent_step, created_at, updated_at, event_horizon, meta, queue, queue_key, "
            f"priority) VALUES (%s, %s, %s, 'pending', %s, %s, %s, %s, {_NOW}, {_NOW}, "
            "(SELECT COALESCE(MAX(id), 0) FROM events), %s, %s, %s, %s) "
            "ON CONFLICT (key) DO NOTHING RETURNING *) "
            "SELECT ins.*, pg_notify(%s, '') FROM ins",
            (new.id, new.workflow, new.version, new.input, new.key, new.parent_id,
             new.parent_step, json.dumps(new.meta), new.queue, new.queue_key, new.priority,
             self._db.channel),
        )  # fmt: skip
        if rows:
            return to_run(rows[0]), True
        return to_run(self._db.one("SELECT * FROM runs WHERE key = %s", (new.key,))[0]), False

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
        where = [
            _RUNNABLE,
            "(" + " OR ".join(["(workflow = %s AND version LIKE %s)"] * len(accepts)) + ")",
        ]
        args: list[Any] = [x for a in accepts for x in (a.workflow, _like(a.version))]
        if run_id is not None:
            where.append("id = %s")
            args.append(run_id)
        cond = " AND ".join(where)
        lease = (
            "status = 'running', lease_token = replace(gen_random_uuid()::text, '-', ''), "
            f"lease_owner = %s, lease_expires_at = {_NOW} + %s, claims = r.claims + 1, "
            f"updated_at = {_NOW}, started_at = COALESCE(r.started_at, {_NOW})"
        )

        if not queues:
            claimed = self._claim_alone(cond, args, limit, owner, lease, lease_seconds)
            if claimed is not None:
                return claimed

        def claim(c: Conn) -> list[Claim]:
            # A run whose cancel was requested while it ran, and whose worker is gone.
            doomed = c.execute(
                f"SELECT *, {_NOW} AS db_now FROM runs WHERE cancel_requested AND {cond} "
                "FOR UPDATE SKIP LOCKED",
                args,
            ).fetchall()
            for row in doomed:
                self._mark_cancelled(c, to_run(row), row["db_now"])
            rows: list[Any] = []
            if queues:
                [clock] = c.execute(f"SELECT {_NOW} AS now").fetchall()
                now = float(clock["now"])
                picked = [r["id"] for r in self._pick_queued(c, queues, cond, args, now, limit)]
                if picked:
                    rows = c.execute(
                        f"UPDATE runs r SET {lease} WHERE r.id = ANY(%s) RETURNING r.*",
                        (owner, lease_seconds, picked),
                    ).fetchall()
            if len(rows) < limit:
                rows += c.execute(
                    f"WITH picked AS (SELECT id FROM runs WHERE NOT cancel_requested AND {cond} "
                    "AND queue IS NULL ORDER BY created_at LIMIT %s FOR UPDATE SKIP LOCKED) "
                    f"UPDATE runs r SET {lease} FROM picked WHERE r.id = picked.id RETURNING r.*",
                    (*args, limit - len(rows), owner, lease_seconds),
                ).fetchall()
            ids = [r["id"] for r in rows]
            return _claims(rows, _journals(ids, c.execute(_JOURNALS, (ids,)) if ids else []))

        return self._db.tx(claim)

    def _claim_alone(
        self,
        cond: str,
        args: list[Any],
        limit: int,
        owner: str,
        lease: str,
        lease_seconds: float,
    ) -> list[Claim] | None:
        """The common claim (no queues, no doomed run) as one autocommitted statement; None,
        having claimed nothing, when a doomed run waits, which the transaction then handles.

        The journals are read by a second statement, after the claim committed, and only for
        the runs the statement could not show to have none. A first claim's run (`claims` now
        1) that the statement finds without entries has none: only the run's creation (a fork's
        copied entries) writes a journal before any lease, and it committed with the row the
        statement sees. A run claimed before is always read after the commit: a worker whose
        lease expired may have committed an append after the statement's snapshot was taken (an
        append holds the row FOR KEY SHARE and leaves it unchanged), and once the token has
        rotated no such append can land."""
        rows = self._db.one(
            "WITH d AS (SELECT EXISTS (SELECT 1 FROM runs WHERE cancel_requested AND "
            f"{cond}) AS doomed), "
            f"picked AS (SELECT id FROM runs WHERE NOT cancel_requested AND {cond} "
            "AND queue IS NULL AND NOT (SELECT doomed FROM d) ORDER BY created_at LIMIT %s "
            "FOR UPDATE SKIP LOCKED), "
            f"c AS (UPDATE runs r SET {lease} FROM picked WHERE r.id = picked.id RETURNING r.*) "
            "SELECT c.*, d.doomed, c.claims > 1 OR EXISTS (SELECT 1 FROM journal j "
            "WHERE j.run_id = c.id) AS replays FROM d LEFT JOIN c ON true",
            (*args, *args, limit, owner, lease_seconds),
        )
        if rows[0]["doomed"]:
            return None
        rows = [r for r in rows if r["id"] is not None]
        replays = [r["id"] for r in rows if r["replays"]]
        found = self._db.one(_JOURNALS, (replays,)) if replays else []
        return _claims(rows, _journals(replays, found))

    def append_stream(
        self, run_id: str, token: str, key: str, value: str, entry: JournalEntry
    ) -> int:
        """One statement, as a step's append is: the lease checked (the row held FOR KEY
        SHARE), the value at the next offset, its journal entry and the readers' NOTIFY."""
        row = entry_row(entry)  # its value (index 6) is the offset, which the statement knows
        rows = self._db.returning(
            _APPEND_STREAM,
            (run_id, token, run_id, key, run_id, key, value, *row[:6], *row[7:], self._db.channel),
        )
        if not rows:
            raise self._lease_lost(run_id)
        return int(rows[0]["seq"])

    def complete(
        self, run_id: str, token: str, output: str, entries: Sequence[JournalEntry] = ()
    ) -> None:
        """A run without a parent completes in one statement, one round trip where the shared
        control flow makes one a statement (BEGIN, parent lock, lease check, finish, waits,
        COMMIT); a child's completion (its parent locked first) and one the statement did not
        write take that flow, which says why."""
        query, args = commits.completion(run_id, token, output, entries)
        if self._db.rowcount(query, args) == 0:
            super().complete(run_id, token, output, entries)

    def append_many(self, appends: Sequence[Append]) -> list[Exception | None]:
        """One autocommitted statement for the lot (`commits.shared`): every run locked in
        run-id order, so two batches cannot deadlock on their rows, each lease checked on its
        own. An append it did not write (fenced, or a child's completion) then commits on its
        own and says why; an entry already written fails the statement, and each runs on its
        own."""
        try:
            written = set(self._db.answer(*commits.shared(appends)))
        except RunStateError:
            return [self._append_alone(a) for a in appends]
        return [None if a.run_id in written else self._append_alone(a) for a in appends]

    def release(self, run_id: str, token: str) -> None:
        self._db.one(
            "WITH r AS (UPDATE runs SET status = 'pending', lease_token = NULL, "
            f"lease_owner = NULL, lease_expires_at = NULL, updated_at = {_NOW} "
            "WHERE id = %s AND lease_token = %s RETURNING id) SELECT pg_notify(%s, '') FROM r",
            (run_id, token, self._db.channel),
        )

    # -- the lock hooks of the shared control flow --------------------------------------------

    def _lock_run(self, c: Connection, run_id: str) -> None:
        c.execute("SELECT 1 FROM runs WHERE id = %s FOR UPDATE", (run_id,))

    def _lock_parent(self, c: Connection, run_id: str) -> None:
        """Rows are locked ancestors first (as cancel locks a tree), so a finishing child takes
        its parent's lock before its own: otherwise it deadlocks with a cancel of the parent."""
        c.execute(
            "SELECT 1 FROM runs WHERE id = (SELECT parent_id FROM runs WHERE id = %s) FOR UPDATE",
            (run_id,),
        )

    def _lock_queue(self, c: Connection, name: str) -> None:
        """Held by every claim of a limited queue until it commits: the next one counts what
        this one leased. Released with the transaction, so a crashed claimer holds nothing."""
        c.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"tether:{self.schema}:queue:{name}",)
        )

    def _lock_start_key(self, c: Connection, key: str) -> None:
        c.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"tether:{self.schema}:{key}",))

    def _lock_event(self, c: Connection, name: str) -> None:
        """Serialises a send of `name` with parks that wait on it, so neither misses the other."""
        c.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"tether:{self.schema}:event:{name}",)
        )

    def _notify(self, c: Connection) -> None:
        c.execute("SELECT pg_notify(%s, '')", (self._db.channel,))
