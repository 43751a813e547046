"""What the shared I2 control flow needs from a database, and its SQL built once per dialect.

The control flow (`sql/checkpointer.py`) is written in SQL both databases speak: `RETURNING`,
`ON CONFLICT ... DO UPDATE`, `NOT cancel_requested`. What still differs is a `Dialect`: the
placeholder, the clock (PostgreSQL's `now()`, on SQLite the host's, through a function each
connection registers), and the row locks PostgreSQL takes and SQLite does without (its one
writer lock serialises every transaction). Each statement is built from those at import, so no
call formats SQL; the hot path's statement is `insert_if_leased`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar

from tether.foundation.checkpoint.sql.rows import COLS

T = TypeVar("T")
_UNFINISHED = "status NOT IN ('completed', 'failed', 'cancelled')"
_UNLEASED = "lease_token = NULL, lease_owner = NULL, lease_expires_at = NULL"


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def executemany(self, query: str, params_seq: Iterable[Sequence[Any]], /) -> object: ...


class Connection(Protocol):
    """A connection inside a transaction: `sqlite3.Connection` or psycopg's."""

    def execute(self, query: str, params: Sequence[Any], /) -> Cursor: ...

    def cursor(self) -> Cursor: ...


class Database(Protocol):
    """Connections, transactions and errors: `sqlite/connection.py`, `postgres/database.py`.
    Every method maps its driver's errors to tether's (`DatabaseUnavailable`, `RunStateError`
    for an entry written twice)."""

    def tx(self, fn: Callable[[Connection], T], /) -> T:
        """`fn` in one transaction, committed when it returns."""

    def one(self, query: str, args: Sequence[Any] = (), /) -> list[Any]:
        """One statement, its own transaction; its rows."""

    def rowcount(self, query: str, args: Sequence[Any], /) -> int:
        """One statement, its own transaction, on the thread's own connection: the append."""

    def wait(self, timeout: float, /) -> None:
        """Until another process may have made a run runnable, a timer is due, or `timeout`."""

    def close(self) -> None: ...


class Dialect:
    """The statements of the shared control flow in one database's SQL. `now` is an SQL
    expression of the database's clock; `for_update` the suffix that locks the rows a read
    returns; `for_key_share` the one the append holds the run's row with, so the lease it
    checked cannot change under it before the commit. `glob` is the operator that matches a
    version against a stored pattern (SQLite's GLOB, PostgreSQL's LIKE) and `pattern` turns a
    version glob (`1.2.*`) into that operator's pattern."""

    def __init__(
        self,
        *,
        placeholder: str,
        now: str,
        for_update: str,
        for_key_share: str,
        glob: str,
        pattern: Callable[[str], str],
    ) -> None:
        def q(text: str) -> str:
            return text.replace("?", placeholder)

        self.placeholder = placeholder
        self.pattern = pattern
        self.upsert_host = q(
            "INSERT INTO worker_hosts (owner, workflow, version, pattern, expires_at) "
            f"VALUES (?, ?, ?, ?, {now} + ?) ON CONFLICT (owner, workflow, version, pattern) "
            "DO UPDATE SET expires_at = EXCLUDED.expires_at"
        )
        self.prune_hosts = q(f"DELETE FROM worker_hosts WHERE expires_at < {now} - ?")
        covers = f"w.workflow = runs.workflow AND runs.version {glob} w.pattern"
        # Not one live worker's recorded version covers it: what DESIGN calls stranded.
        self.stranded = (
            f"{_UNFINISHED} AND NOT EXISTS (SELECT 1 FROM worker_hosts w "
            f"WHERE {covers} AND w.expires_at > {now})"
        )
        self.resumers = (
            "SELECT runs.id AS run_id, w.version AS version, "
            f"MAX(CASE WHEN w.expires_at > {now} THEN 1 ELSE 0 END) AS live "
            f"FROM runs JOIN worker_hosts w ON {covers} WHERE runs.id IN ({{ids}}) "
            "GROUP BY runs.id, w.version"
        )
        values = ", ".join(["?"] * 12)
        insert = f"INSERT INTO journal ({COLS}) VALUES ({values})"
        self.insert_entry = q(insert)
        self.insert_entry_once = q(f"{insert} ON CONFLICT DO NOTHING")
        self.upsert_entry = q(
            f"{insert} ON CONFLICT (run_id, step_id, attempt) DO UPDATE SET "
            + ", ".join(f"{col} = EXCLUDED.{col}" for col in COLS.split(", ")[3:])
        )
        self.insert_if_leased = q(
            f"INSERT INTO journal ({COLS}) SELECT {values} FROM runs "
            f"WHERE id = ? AND lease_token = ? AND NOT cancel_requested{for_key_share}"
        )
        self.journal = q(
            f"SELECT {COLS} FROM journal WHERE run_id = ? ORDER BY finished_at, step_id, attempt"
        )
        self.journal_at = q(
            f"SELECT {COLS} FROM journal WHERE run_id = ? AND (step_id = ? OR step_id LIKE ?) "
            "ORDER BY finished_at, step_id, attempt"
        )
        self.completion = q(
            f"SELECT {COLS} FROM journal WHERE run_id = ? AND step_id = ? AND status != 'attempt'"
        )
        self.run = q("SELECT * FROM runs WHERE id = ?")
        run_now = f"SELECT *, {now} AS db_now FROM runs WHERE id = ?"
        self.lock_run = q(f"{run_now}{for_update}")
        self.lock_leased = q(f"{run_now} AND lease_token = ?{for_update}")
        self.check_lease = q(f"{run_now} AND lease_token = ? AND NOT cancel_requested{for_update}")
        self.cancel_requested = q("SELECT cancel_requested FROM runs WHERE id = ?")
        self.heartbeat = q(
            f"UPDATE runs SET lease_expires_at = {now} + ? "
            "WHERE id = ? AND lease_token = ? RETURNING id"
        )
        self.waits = q("SELECT step_id, deadline FROM waits WHERE run_id = ?")
        self.drop_wait = q("DELETE FROM waits WHERE run_id = ? AND step_id = ?")
        self.drop_waits = q("DELETE FROM waits WHERE run_id = ?")
        self.put_wait = q(
            "INSERT INTO waits (run_id, step_id, name, kind, deadline, event, match, child_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, step_id) DO UPDATE SET "
            "name = EXCLUDED.name, kind = EXCLUDED.kind, deadline = EXCLUDED.deadline, "
            "event = EXCLUDED.event, match = EXCLUDED.match, child_id = EXCLUDED.child_id"
        )
        self.park = q(
            f"UPDATE runs SET status = ?, wake_at = ?, {_UNLEASED}, updated_at = ? WHERE id = ?"
        )
        self.held_events = q(
            "SELECT e.id, e.data, e.run_id FROM events e, runs r WHERE r.id = ? "
            "AND e.name = ? AND e.created_at >= ? "
            "AND (e.run_id = r.id OR (e.run_id IS NULL AND e.id > r.event_horizon)) "
            "AND CAST(e.id AS TEXT) NOT IN (SELECT ref FROM journal WHERE run_id = r.id "
            "AND kind = 'event' AND ref IS NOT NULL) ORDER BY e.id"
        )
        self.finish = q(
            "UPDATE runs SET status = ?, output = ?, error = ?, failed_step = ?, wake_at = NULL, "
            f"{_UNLEASED}, updated_at = ? WHERE id = ? RETURNING *"
        )
        self.needs_attention = q(
            f"UPDATE runs SET status = 'needs_attention', error = ?, failed_step = ?, {_UNLEASED}, "
            f"updated_at = {now} WHERE id = ? AND lease_token = ? AND NOT cancel_requested "
            "RETURNING id"
        )
        self.tree = q(
            "WITH RECURSIVE tree(id) AS (SELECT CAST(? AS TEXT) UNION SELECT r.id FROM runs r "
            f"JOIN tree ON r.parent_id = tree.id) SELECT * FROM runs WHERE id IN "
            f"(SELECT id FROM tree) AND {_UNFINISHED} ORDER BY created_at{for_update}"
        )
        self.request_cancel = q("UPDATE runs SET cancel_requested = true WHERE id = ?")
        self.mark_cancelled = q(
            "UPDATE runs SET status = 'cancelled', cancel_requested = true, wake_at = NULL, "
            f"{_UNLEASED}, updated_at = ? WHERE id = ? RETURNING *"
        )
        self.retry_step = q(
            "UPDATE journal SET status = 'attempt' WHERE run_id = ? AND step_id = ? "
            "AND status = 'error' RETURNING kind, ref"
        )
        self.make_pending = q(
            "UPDATE runs SET status = 'pending', error = NULL, failed_step = NULL, "
            "updated_at = ? WHERE id = ?"
        )
        self.insert_event = q(
            f"INSERT INTO events (name, data, run_id, created_at) VALUES (?, ?, ?, {now}) "
            "RETURNING id, created_at"
        )
        waiting = (
            "SELECT w.run_id, w.step_id, w.name, w.match FROM waits w "
            "JOIN runs r ON r.id = w.run_id WHERE w.kind = 'event' AND w.event = ? "
            f"AND r.{_UNFINISHED}"
        )
        self.event_waits = q(f"{waiting} ORDER BY r.created_at, w.step_id")
        self.event_waits_of_run = q(f"{waiting} AND w.run_id = ? ORDER BY r.created_at, w.step_id")
        self.wake = q(
            "UPDATE runs SET status = 'pending', wake_at = NULL, updated_at = ? "
            "WHERE id = ? AND status IN ('waiting', 'sleeping', 'paused')"
        )
