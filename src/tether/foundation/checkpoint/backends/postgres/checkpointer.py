"""PostgresCheckpointer: the I2 contract in SQL, mirroring the SQLite backend's semantics.

- A claim is one `UPDATE ... FROM (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING`; leases
  expire by the database's clock.
- Every run write checks the lease token in the statement that locks the run's row; a plain
  append is one `INSERT ... SELECT ... FROM runs WHERE <lease holds> FOR KEY SHARE` + COMMIT.
- Whatever satisfies a wait first takes a lock park also holds (the parent's row for a child's
  delivery, a per-name advisory lock for an event), so no wake-up falls between a park's check
  and its commit. Transactions that make a run runnable NOTIFY the schema's channel.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from tether.errors import RunNotFound, RunStateError
from tether.foundation.checkpoint.backends.postgres.database import NOW as _NOW
from tether.foundation.checkpoint.backends.postgres.database import Conn, Database
from tether.foundation.checkpoint.backends.postgres.housekeeping import PostgresHousekeeping
from tether.foundation.checkpoint.backends.postgres.schedules import PostgresSchedules
from tether.foundation.checkpoint.backends.postgres.schema import COLS, entry_row, to_entry, to_run
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

_VALUES = ", ".join(["%s"] * 12)
_INSERT_ENTRY = f"INSERT INTO journal ({COLS}) VALUES ({_VALUES})"
_INSERT_ENTRY_IF_LEASED = (
    f"INSERT INTO journal ({COLS}) SELECT {_VALUES} FROM runs "
    "WHERE id = %s AND lease_token = %s AND NOT cancel_requested FOR KEY SHARE"
)
_RUNNABLE = (
    f"(status = 'pending' OR (status IN ('sleeping', 'waiting') AND wake_at <= {_NOW}) "
    f"OR (status = 'running' AND lease_expires_at < {_NOW}))"
)


def _like(glob: str) -> str:
    """A version glob (`1.2.*`) as a LIKE pattern."""
    escaped = glob.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


class PostgresCheckpointer(PostgresSchedules, PostgresHousekeeping):
    """I2 on PostgreSQL. `url` is `postgresql://user[:password]@host[:port]/db`; `schema`
    (created if missing) keeps deployments or tests sharing one database apart."""

    def __init__(
        self,
        url: str,
        schema: str | None = None,
        event_retention: float = 7 * 24 * 3600.0,
        pool_size: int = 10,
        connect_timeout: float = 5.0,
    ) -> None:
        self._db = Database(url, schema, pool_size, connect_timeout)
        self.url, self.schema, self.channel = url, self._db.schema, self._db.channel
        self._retention = event_retention
        self._tx, self._one, self._notify = self._db.tx, self._db.one, self._db.notify

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> PostgresCheckpointer:
        """`TETHER_CHECKPOINT_SCHEMA`, else `TETHER_DATABASE_SCHEMA`, else the URL's search_path."""
        extra = settings.model_extra or {}
        schema = (
            os.environ.get("TETHER_CHECKPOINT_SCHEMA")
            or extra.get("checkpoint_schema")
            or os.environ.get("TETHER_DATABASE_SCHEMA")
            or extra.get("database_schema")
        )
        return cls(
            settings.database_url_for("checkpoint"),
            schema=schema or None,
            event_retention=settings.event_retention_seconds,
            **options,
        )

    def wait_for_work(self, timeout: float) -> None:
        self._db.wait(timeout)

    def close(self) -> None:
        self._db.close()

    # -- runs -------------------------------------------------------------------------------

    def create_run(self, new: NewRun) -> tuple[RunRecord, bool]:
        rows = self._one(
            "WITH ins AS (INSERT INTO runs (id, workflow, version, status, input, key, parent_id, "
            "parent_step, created_at, updated_at, event_horizon, meta) "
            f"VALUES (%s, %s, %s, 'pending', %s, %s, %s, %s, {_NOW}, {_NOW}, "
            "(SELECT COALESCE(MAX(id), 0) FROM events), %s) "
            "ON CONFLICT (key) DO NOTHING RETURNING *) "
            "SELECT ins.*, pg_notify(%s, '') FROM ins",
            (new.id, new.workflow, new.version, new.input, new.key, new.parent_id,
             new.parent_step, json.dumps(new.meta), self._db.channel),
        )  # fmt: skip
        if rows:
            return to_run(rows[0]), True
        return to_run(self._one("SELECT * FROM runs WHERE key = %s", (new.key,))[0]), False

    def get_run(self, run_id: str) -> RunRecord:
        rows = self._one("SELECT * FROM runs WHERE id = %s", (run_id,))
        if not rows:
            raise RunNotFound(run_id)
        return to_run(rows[0])

    def list_runs(self, filter: RunFilter) -> list[RunRecord]:
        where, args = ["true"], list[Any]()
        if filter.statuses:
            where.append("status = ANY(%s)")
            args.append([s.value for s in filter.statuses])
        if filter.workflow:
            where.append("workflow = %s")
            args.append(filter.workflow)
        if filter.parent_id:
            where.append("parent_id = %s")
            args.append(filter.parent_id)
        if filter.finished_before is not None:
            where.append("status IN ('completed', 'failed', 'cancelled') AND updated_at < %s")
            args.append(filter.finished_before)
        rows = self._one(
            f"SELECT * FROM runs WHERE {' AND '.join(where)} "
            "ORDER BY created_at DESC, id DESC LIMIT %s",
            (*args, filter.limit),
        )
        return [to_run(r) for r in rows]

    def journal(self, run_id: str) -> list[JournalEntry]:
        rows = self._one(
            f"SELECT {COLS} FROM journal WHERE run_id = %s ORDER BY finished_at, step_id, attempt",
            (run_id,),
        )
        return [to_entry(r) for r in rows]

    # -- execution --------------------------------------------------------------------------

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
        where = [
            _RUNNABLE,
            "(" + " OR ".join(["(workflow = %s AND version LIKE %s)"] * len(accepts)) + ")",
        ]
        args: list[Any] = [x for a in accepts for x in (a.workflow, _like(a.version))]
        if run_id is not None:
            where.append("id = %s")
            args.append(run_id)
        cond = " AND ".join(where)

        def claim(c: Conn) -> list[Claim]:
            # A run whose cancel was requested while it ran, and whose worker is gone.
            doomed = c.execute(
                f"SELECT * FROM runs WHERE cancel_requested AND {cond} FOR UPDATE SKIP LOCKED",
                args,
            ).fetchall()
            for row in doomed:
                self._mark_cancelled(c, to_run(row))
            rows = c.execute(
                f"WITH picked AS (SELECT id FROM runs WHERE NOT cancel_requested AND {cond} "
                "ORDER BY created_at LIMIT %s FOR UPDATE SKIP LOCKED) "
                "UPDATE runs r SET status = 'running', "
                "lease_token = replace(gen_random_uuid()::text, '-', ''), lease_owner = %s, "
                f"lease_expires_at = {_NOW} + %s, claims = r.claims + 1, updated_at = {_NOW} "
                "FROM picked WHERE r.id = picked.id RETURNING r.*",
                (*args, limit, owner, lease_seconds),
            ).fetchall()
            if not rows:
                return []
            journals: dict[str, list[JournalEntry]] = {r["id"]: [] for r in rows}
            for e in c.execute(
                f"SELECT {COLS} FROM journal WHERE run_id = ANY(%s) "
                "ORDER BY finished_at, step_id, attempt",
                (list(journals),),
            ):
                journals[e["run_id"]].append(to_entry(e))
            rows.sort(key=lambda r: r["created_at"])
            return [
                Claim(run=to_run(r), token=r["lease_token"], journal=journals[r["id"]])
                for r in rows
            ]

        return self._tx(claim)

    def heartbeat(self, run_id: str, token: str, lease_seconds: float) -> bool:
        rows = self._one(
            f"UPDATE runs SET lease_expires_at = {_NOW} + %s "
            "WHERE id = %s AND lease_token = %s RETURNING id",
            (lease_seconds, run_id, token),
        )
        return bool(rows)

    def append(self, run_id: str, token: str, entries: Sequence[JournalEntry]) -> None:
        if len(entries) == 1:
            if (
                self._db.rowcount(_INSERT_ENTRY_IF_LEASED, (*entry_row(entries[0]), run_id, token))
                != 1
            ):
                raise self._lease_lost(run_id)
            return

        def append(c: Conn) -> None:
            self._check_lease(c, run_id, token)
            c.cursor().executemany(_INSERT_ENTRY, [entry_row(e) for e in entries])

        self._tx(append)

    def park(
        self, run_id: str, token: str, waits: Sequence[Wait], entries: Sequence[JournalEntry] = ()
    ) -> list[JournalEntry]:
        def park(c: Conn) -> list[JournalEntry]:
            for name in sorted({w.event for w in waits if w.event is not None}):
                self._lock_event(c, name)  # before the row lock, in send_event's order
            run, now = self._check_lease(c, run_id, token)
            if entries:
                c.cursor().executemany(_INSERT_ENTRY, [entry_row(e) for e in entries])
            existing = {
                r["step_id"]: r["deadline"]
                for r in c.execute(
                    "SELECT step_id, deadline FROM waits WHERE run_id = %s", (run_id,)
                )
            }
            c.execute(
                "DELETE FROM waits WHERE run_id = %s AND NOT step_id = ANY(%s)",
                (run_id, [w.step_id for w in waits]),
            )
            resolved: list[JournalEntry] = []
            deadlines: list[float] = []
            for w in waits:
                deadline = existing.get(w.step_id, w.deadline)
                entry = self._resolve_wait(c, run, w, deadline, now)
                if entry is not None:
                    resolved.append(entry)
                    c.execute(
                        "DELETE FROM waits WHERE run_id = %s AND step_id = %s", (run_id, w.step_id)
                    )
                    continue
                c.execute(
                    "INSERT INTO waits (run_id, step_id, name, kind, deadline, event, match, "
                    "child_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (run_id, step_id) DO UPDATE SET name = EXCLUDED.name, "
                    "kind = EXCLUDED.kind, deadline = EXCLUDED.deadline, event = EXCLUDED.event, "
                    "match = EXCLUDED.match, child_id = EXCLUDED.child_id",
                    (run_id, w.step_id, w.name, w.kind.value, deadline, w.event,
                     json.dumps(w.match), w.child_id),
                )  # fmt: skip
                if deadline is not None:
                    deadlines.append(deadline)
            if resolved:
                return resolved
            status = parked_status(waits).value
            c.execute(
                "UPDATE runs SET status = %s, wake_at = %s, lease_token = NULL, "
                f"lease_owner = NULL, lease_expires_at = NULL, updated_at = {_NOW} WHERE id = %s",
                (status, min(deadlines) if deadlines else None, run_id),
            )
            return []

        return self._tx(park)

    def _resolve_wait(
        self, c: Conn, run: RunRecord, w: Wait, deadline: float | None, now: float
    ) -> JournalEntry | None:
        """The wait's completion if it can be had now, journaled; else None."""
        row = c.execute(
            f"SELECT {COLS} FROM journal WHERE run_id = %s AND step_id = %s "
            "AND status != 'attempt'",
            (run.id, w.step_id),
        ).fetchone()
        if row is not None:  # delivered while the run was running (an event or a child)
            return to_entry(row)
        entry: JournalEntry | None = None
        if w.kind is WaitKind.EVENT:
            entry = self._take_held_event(c, run, w, now)
        elif w.kind is WaitKind.CHILD and w.child_id is not None:
            child = c.execute("SELECT * FROM runs WHERE id = %s", (w.child_id,)).fetchone()
            if child is not None and child["status"] in TERMINAL:
                entry = child_entry(to_run(child), w.name, now)
        if entry is None and deadline is not None and deadline <= now:
            entry = deadline_entry(run.id, w, now)
        if entry is not None:
            c.execute(_INSERT_ENTRY, entry_row(entry))
        return entry

    def _take_held_event(self, c: Conn, run: RunRecord, w: Wait, now: float) -> JournalEntry | None:
        """An event sent before this wait began: addressed to this run, or broadcast after the
        run was created and matched by a non-empty `match`; never one this run already saw."""
        rows = c.execute(
            "SELECT e.id, e.data, e.run_id FROM events e, runs r WHERE r.id = %s "
            "AND e.name = %s AND e.created_at >= %s "
            "AND (e.run_id = r.id OR (e.run_id IS NULL AND e.id > r.event_horizon)) "
            "AND e.id::text NOT IN (SELECT ref FROM journal WHERE run_id = r.id "
            "AND kind = 'event' AND ref IS NOT NULL) ORDER BY e.id",
            (run.id, w.event, now - self._retention),
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
        def finish(c: Conn) -> None:
            self._lock_parent(c, run_id)
            _, now = self._check_lease(c, run_id, token)
            if entries:
                c.cursor().executemany(_INSERT_ENTRY, [entry_row(e) for e in entries])
            row = c.execute(
                "UPDATE runs SET status = %s, output = %s, error = %s, failed_step = %s, "
                "wake_at = NULL, lease_token = NULL, lease_owner = NULL, lease_expires_at = NULL, "
                f"updated_at = {_NOW} WHERE id = %s RETURNING *",
                (status.value, output, error, failed_step, run_id),
            ).fetchone()
            assert row is not None  # the lease check locked it
            c.execute("DELETE FROM waits WHERE run_id = %s", (run_id,))
            self._deliver_to_parent(c, to_run(row), now)

        self._tx(finish)

    def needs_attention(self, run_id: str, token: str, step_id: str, evidence: str) -> None:
        rows = self._one(
            "UPDATE runs SET status = 'needs_attention', error = %s, failed_step = %s, "
            "lease_token = NULL, lease_owner = NULL, lease_expires_at = NULL, "
            f"updated_at = {_NOW} WHERE id = %s AND lease_token = %s AND NOT cancel_requested "
            "RETURNING id",
            (evidence, step_id, run_id, token),
        )
        if not rows:
            raise self._lease_lost(run_id)

    def release(self, run_id: str, token: str) -> None:
        self._one(
            "WITH r AS (UPDATE runs SET status = 'pending', lease_token = NULL, "
            f"lease_owner = NULL, lease_expires_at = NULL, updated_at = {_NOW} "
            "WHERE id = %s AND lease_token = %s RETURNING id) SELECT pg_notify(%s, '') FROM r",
            (run_id, token, self._db.channel),
        )

    # -- control ----------------------------------------------------------------------------

    def cancel(self, run_id: str) -> RunRecord:
        def cancel(c: Conn) -> RunRecord:
            row = c.execute(
                f"SELECT *, {_NOW} AS db_now FROM runs WHERE id = %s FOR UPDATE", (run_id,)
            ).fetchone()
            if row is None:
                raise RunNotFound(run_id)
            if row["status"] in TERMINAL:
                raise RunStateError(f"run {run_id} is already {row['status']}; nothing to cancel")
            self._cancel_tree(c, run_id, row["db_now"])
            return self._get(c, run_id)

        return self._tx(cancel)

    def finish_cancel(self, run_id: str, token: str) -> None:
        def finish_cancel(c: Conn) -> None:
            self._lock_parent(c, run_id)
            row = c.execute(
                f"SELECT *, {_NOW} AS db_now FROM runs WHERE id = %s AND lease_token = %s "
                "FOR UPDATE",
                (run_id, token),
            ).fetchone()
            if row is None:
                raise LeaseLost(run_id)
            self._mark_cancelled(c, to_run(row))
            self._cancel_tree(c, run_id, row["db_now"])

        self._tx(finish_cancel)

    def _cancel_tree(self, c: Conn, run_id: str, now: float) -> None:
        rows = c.execute(
            "WITH RECURSIVE tree(id) AS (SELECT %s::text UNION SELECT r.id FROM runs r "
            "JOIN tree ON r.parent_id = tree.id) SELECT * FROM runs WHERE id IN "
            "(SELECT id FROM tree) AND status NOT IN ('completed', 'failed', 'cancelled') "
            "ORDER BY created_at FOR UPDATE",
            (run_id,),
        ).fetchall()
        for row in rows:
            run = to_run(row)
            if run.status is RunStatus.RUNNING and (run.lease_expires_at or 0) >= now:
                c.execute("UPDATE runs SET cancel_requested = true WHERE id = %s", (run.id,))
            else:
                self._mark_cancelled(c, run)

    def _mark_cancelled(self, c: Conn, run: RunRecord) -> None:
        row = c.execute(
            "UPDATE runs SET status = 'cancelled', cancel_requested = true, wake_at = NULL, "
            "lease_token = NULL, lease_owner = NULL, lease_expires_at = NULL, "
            f"updated_at = {_NOW} WHERE id = %s RETURNING *, {_NOW} AS db_now",
            (run.id,),
        ).fetchone()
        assert row is not None
        c.execute("DELETE FROM waits WHERE run_id = %s", (run.id,))
        self._deliver_to_parent(c, to_run(row), row["db_now"])

    def retry(self, run_id: str) -> RunRecord:
        def retry(c: Conn) -> RunRecord:
            self._retry(c, run_id)
            self._notify(c)
            return self._get(c, run_id)

        return self._tx(retry)

    def _retry(self, c: Conn, run_id: str) -> None:
        row = c.execute("SELECT * FROM runs WHERE id = %s FOR UPDATE", (run_id,)).fetchone()
        if row is None:
            raise RunNotFound(run_id)
        if row["status"] != "failed":
            raise RunStateError(
                f"run {run_id} is {row['status']}; only a failed run can be retried"
            )
        if row["failed_step"] is not None:
            failed = c.execute(
                "UPDATE journal SET status = 'attempt' WHERE run_id = %s AND step_id = %s "
                "AND status = 'error' RETURNING kind, ref",
                (run_id, row["failed_step"]),
            ).fetchone()
            if failed is not None and failed["kind"] == "invoke" and failed["ref"]:
                child = c.execute("SELECT status FROM runs WHERE id = %s", (failed["ref"],))
                if (child.fetchone() or {}).get("status") == "failed":
                    self._retry(c, failed["ref"])
        c.execute(
            "UPDATE runs SET status = 'pending', error = NULL, failed_step = NULL, "
            f"updated_at = {_NOW} WHERE id = %s",
            (run_id,),
        )

    def resolve(self, run_id: str, step_id: str, entry: JournalEntry | None) -> RunRecord:
        def resolve(c: Conn) -> RunRecord:
            row = c.execute("SELECT * FROM runs WHERE id = %s FOR UPDATE", (run_id,)).fetchone()
            if row is None:
                raise RunNotFound(run_id)
            if row["status"] != "needs_attention":
                raise RunStateError(
                    f"run {run_id} is {row['status']}; only a needs_attention run can be resolved"
                )
            if entry is not None:
                c.execute(
                    f"{_INSERT_ENTRY} ON CONFLICT (run_id, step_id, attempt) DO UPDATE SET "
                    + ", ".join(f"{col} = EXCLUDED.{col}" for col in COLS.split(", ")[3:]),
                    entry_row(entry),
                )
            c.execute(
                "UPDATE runs SET status = 'pending', error = NULL, failed_step = NULL, "
                f"updated_at = {_NOW} WHERE id = %s",
                (run_id,),
            )
            self._notify(c)
            return self._get(c, run_id)

        return self._tx(resolve)

    def send_event(self, name: str, data: str, run_id: str | None = None) -> EventReceipt:
        payload = json.loads(data)

        def send(c: Conn) -> EventReceipt:
            self._lock_event(c, name)
            if run_id is not None:
                row = c.execute("SELECT status FROM runs WHERE id = %s", (run_id,)).fetchone()
                if row is None:
                    raise RunNotFound(run_id)
                if row["status"] in TERMINAL:
                    raise RunStateError(
                        f"run {run_id} is {row['status']}; an event for it would never be read"
                    )
            event = c.execute(
                f"INSERT INTO events (name, data, run_id, created_at) VALUES (%s, %s, %s, {_NOW}) "
                "RETURNING id, created_at",
                (name, data, run_id),
            ).fetchone()
            assert event is not None
            query = (
                "SELECT w.run_id, w.step_id, w.name, w.match FROM waits w "
                "JOIN runs r ON r.id = w.run_id WHERE w.kind = 'event' AND w.event = %s "
                "AND r.status NOT IN ('completed', 'failed', 'cancelled')"
            )
            args: list[Any] = [name]
            if run_id is not None:
                query += " AND w.run_id = %s"
                args.append(run_id)
            woken: list[str] = []
            for w in c.execute(query + " ORDER BY r.created_at, w.step_id", args).fetchall():
                if w["run_id"] in woken or not matches(json.loads(w["match"]), payload):
                    continue
                entry = event_entry(
                    w["run_id"], w["step_id"], w["name"], event["id"], data, event["created_at"]
                )
                self._wake(c, w["run_id"], w["step_id"], entry)
                woken.append(w["run_id"])
            return EventReceipt(event_id=event["id"], woken=woken)

        return self._tx(send)

    # -- helpers ----------------------------------------------------------------------------

    def _get(self, c: Conn, run_id: str) -> RunRecord:
        row = c.execute("SELECT * FROM runs WHERE id = %s", (run_id,)).fetchone()
        assert row is not None
        return to_run(row)

    def _lock_parent(self, c: Conn, run_id: str) -> None:
        """Rows are locked ancestors first (as cancel locks a tree), so a finishing child takes
        its parent's lock before its own: otherwise it deadlocks with a cancel of the parent."""
        c.execute(
            "SELECT 1 FROM runs WHERE id = (SELECT parent_id FROM runs WHERE id = %s) FOR UPDATE",
            (run_id,),
        )

    def _lock_event(self, c: Conn, name: str) -> None:
        """Serialises a send of `name` with parks that wait on it, so neither misses the other."""
        c.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"tether:{self.schema}:event:{name}",)
        )

    def _check_lease(self, c: Conn, run_id: str, token: str) -> tuple[RunRecord, float]:
        """The run, locked, if the lease is ours; and the database's clock."""
        row = c.execute(
            f"SELECT *, {_NOW} AS db_now FROM runs WHERE id = %s AND lease_token = %s "
            "AND NOT cancel_requested FOR UPDATE",
            (run_id, token),
        ).fetchone()
        if row is None:
            raise self._lease_lost(run_id, c)
        return to_run(row), float(row["db_now"])

    def _lease_lost(self, run_id: str, c: Conn | None = None) -> LeaseLost:
        query, args = "SELECT cancel_requested FROM runs WHERE id = %s", (run_id,)
        rows = c.execute(query, args).fetchall() if c is not None else self._one(query, args)
        return LeaseLost(run_id, cancel_requested=bool(rows and rows[0]["cancel_requested"]))

    def _wake(self, c: Conn, run_id: str, step_id: str, entry: JournalEntry) -> None:
        """Journal a wait's completion, drop the wait, and make the run pending if parked."""
        c.execute(f"{_INSERT_ENTRY} ON CONFLICT DO NOTHING", entry_row(entry))
        c.execute("DELETE FROM waits WHERE run_id = %s AND step_id = %s", (run_id, step_id))
        woken = c.execute(
            f"UPDATE runs SET status = 'pending', wake_at = NULL, updated_at = {_NOW} "
            "WHERE id = %s AND status IN ('waiting', 'sleeping', 'paused') RETURNING id",
            (run_id,),
        ).fetchone()
        if woken is not None:
            self._notify(c)

    def _deliver_to_parent(self, c: Conn, child: RunRecord, now: float) -> None:
        if child.parent_id is None or child.parent_step is None:
            return
        # Lock the parent first: its park holds this lock while it checks the child.
        c.execute("SELECT 1 FROM runs WHERE id = %s FOR UPDATE", (child.parent_id,))
        entry = child_entry(child, str(child.meta.get("step_name", child.parent_step)), now)
        self._wake(c, child.parent_id, child.parent_step, entry)
