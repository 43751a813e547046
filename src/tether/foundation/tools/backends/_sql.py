"""tool_call_results' queries and transactions, written once for both SQL backends.

Two autocommit connections behind one lock: one whose commits are flushed before they return,
one whose commits trail (SQLite at synchronous=NORMAL, PostgreSQL at synchronous_commit=off),
made durable by the next flushed commit on the same log, the run's journal append. `finish`
and a trailing intent use the second: should a power loss take the row with the append that
followed it, the call is `started` or missing and its replay class decides, as for any
interrupted call. The intent insert is one statement whose conflict on the partial unique
index is the "a live call exists" answer, `finish` and `fail` are one conditional UPDATE each,
and `resolve` is a read-modify-write in one transaction (the row locked on PostgreSQL, under
`BEGIN IMMEDIATE` on SQLite). A backend supplies the connections, that transaction and the
error its driver raises; the statements are built once, from its `Dialect`.
"""

from __future__ import annotations

import contextlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from tether.errors import ApprovalSpent, DatabaseUnavailable
from tether.foundation.tools.backends._table import COLUMNS, SELECT, record, values
from tether.foundation.tools.results import (
    CallStatus,
    Resolution,
    ToolCallRecord,
    apply_resolution,
)

_FINISH = ("status", "result", "result_ref", "finished_at")
_FAIL = ("status", "error_type", "error", "interrupted", "finished_at")


class Dialect:
    """The statements in one database's SQL: its placeholder, its two-argument maximum
    (`max` on SQLite, `GREATEST` on PostgreSQL) and whether `resolve` locks the row it reads."""

    def __init__(self, *, placeholder: str, greatest: str, for_update: str) -> None:
        p = placeholder
        self.placeholder = p
        self.latest = f"{SELECT} WHERE run_id = {p} AND step_id = {p} ORDER BY attempt DESC LIMIT 1"
        self.latest_for_update = self.latest + for_update
        # The attempt is the intent's or one past the last, whichever is higher; a live row at
        # (run, step) makes the insert a no-op through the partial unique index.
        insert = (
            f"INSERT INTO tool_call_results ({', '.join(COLUMNS)}) SELECT {p}, {p}, "
            f"{greatest}({p}, COALESCE((SELECT max(attempt) + 1 FROM tool_call_results "
            f"WHERE run_id = {p} AND step_id = {p}), 0)), {', '.join([p] * (len(COLUMNS) - 3))} "
        )
        self.begin = insert + "WHERE true ON CONFLICT DO NOTHING RETURNING attempt"
        # An approved call's intent is a no-op too if its approval is on a row of another call
        # (any row, found through the approval's index: a failed call was released as well;
        # two racing live ones meet the approval's unique index instead). Only approved calls
        # pay for the look.
        self.begin_approved = (
            insert + f"WHERE NOT EXISTS (SELECT 1 FROM tool_call_results WHERE approval = {p} "
            f"AND NOT (run_id = {p} AND step_id = {p})) ON CONFLICT DO NOTHING RETURNING attempt"
        )
        self.spent = (
            f"SELECT run_id, step_id FROM tool_call_results WHERE approval = {p} "
            f"AND NOT (run_id = {p} AND step_id = {p}) LIMIT 1"
        )
        self.resolve = _update(COLUMNS[3:], p)
        self.finish = _update(_FINISH, p) + " AND status = 'started'"
        self.fail = _update(_FAIL, p) + " AND status = 'started'"


def _update(columns: Sequence[str], p: str) -> str:
    sets = ", ".join(f"{c} = {p}" for c in columns)
    where = f"run_id = {p} AND step_id = {p} AND attempt = {p}"
    return f"UPDATE tool_call_results SET {sets} WHERE {where}"


class _Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class _Connection(Protocol):
    def execute(self, query: str, params: Sequence[Any] = (), /) -> _Cursor: ...

    def close(self) -> None: ...


C = TypeVar("C", bound=_Connection)


class SqlToolResults(ABC, Generic[C]):
    """The I1 result store over a SQL connection; see the module docstring for the split."""

    _sql: ClassVar[Dialect]
    _driver_error: ClassVar[type[Exception]]  # what the driver raises when the database fails
    _where: str  # "in <file>", "on <dsn without password>"
    _conn: C  # flushed commits
    _trailing: C  # commits made durable by the next flushed one (module docstring)
    _lock: threading.Lock

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """The driver's errors as `DatabaseUnavailable`, naming the database."""
        try:
            yield
        except self._driver_error as e:
            raise DatabaseUnavailable(f"tool_call_results {self._where}: {e}") from e

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[object]:
        """What `resolve` reads and writes, atomically."""

    def begin(
        self, intent: ToolCallRecord, *, trailing: bool = False
    ) -> tuple[ToolCallRecord, bool]:
        # An approval is spent by this row: its consumption is never left to trail.
        conn = self._trailing if trailing and intent.approval is None else self._conn
        row = values(intent)
        call = (intent.run_id, intent.step_id)
        params = (*row[:2], intent.attempt, *call, *row[3:])
        query = self._sql.begin
        if intent.approval is not None:
            query, params = self._sql.begin_approved, (*params, intent.approval, *call)
        with self._lock, self._errors():
            inserted = conn.execute(query, params).fetchone()
            if inserted is not None:
                return intent.model_copy(update={"attempt": inserted[0]}), True
            latest = conn.execute(self._sql.latest, call).fetchone()
            live = None if latest is None else record(latest)
            if live is not None and live.status is not CallStatus.FAILED:
                return live, False  # the row whose conflict stopped the insert
            other = self._conn.execute(self._sql.spent, (intent.approval, *call)).fetchone()
        assert intent.approval is not None and other is not None  # what else stops the insert
        raise ApprovalSpent(intent.approval, f"{other[0]}/{other[1]}")

    def finish(
        self, run_id: str, step_id: str, attempt: int, *, result: str | None,
        result_ref: str | None, finished_at: float,
    ) -> None:  # fmt: skip
        args = (CallStatus.FINISHED.value, result, result_ref, finished_at)
        self._update(self._sql.finish, args, run_id, step_id, attempt, self._trailing)

    def fail(
        self, run_id: str, step_id: str, attempt: int, *, error_type: str, error: str,
        interrupted: bool, finished_at: float,
    ) -> bool:  # fmt: skip
        args = (CallStatus.FAILED.value, error_type, error, interrupted, finished_at)
        return self._update(self._sql.fail, args, run_id, step_id, attempt)

    def lookup(self, run_id: str, step_id: str) -> ToolCallRecord | None:
        with self._lock, self._errors():
            row = self._conn.execute(self._sql.latest, (run_id, step_id)).fetchone()
        return None if row is None else record(row)

    def resolve(
        self, run_id: str, step_id: str, resolution: Resolution, result: str | None,
        at: float,
    ) -> ToolCallRecord:  # fmt: skip
        with self._lock, self._errors(), self._transaction():
            row = self._conn.execute(self._sql.latest_for_update, (run_id, step_id)).fetchone()
            latest = None if row is None else record(row)
            new = apply_resolution(latest, run_id, step_id, resolution, result, at)
            self._conn.execute(self._sql.resolve, (*values(new)[3:], run_id, step_id, new.attempt))
        return new

    def forget(self, run_ids: Sequence[str]) -> int:
        deleted = 0
        with self._lock, self._errors():
            for i in range(0, len(run_ids), 500):
                chunk = list(run_ids[i : i + 500])
                marks = ", ".join([self._sql.placeholder] * len(chunk))
                deleted += self._conn.execute(
                    f"DELETE FROM tool_call_results WHERE run_id IN ({marks})", chunk
                ).rowcount
        return deleted

    def copy_calls(self, from_run: str, to_run: str, step_ids: Sequence[str]) -> int:
        if not step_ids:
            return 0
        p = self._sql.placeholder
        copied = ", ".join(COLUMNS[1:])
        query = (
            f"INSERT INTO tool_call_results ({', '.join(COLUMNS)}) SELECT {p}, {copied} "
            f"FROM tool_call_results WHERE run_id = {p} AND step_id IN "
            f"({', '.join([p] * len(step_ids))})"
        )
        with self._lock, self._errors(), self._transaction():
            return self._conn.execute(query, (to_run, from_run, *step_ids)).rowcount

    def blob_refs(self) -> set[str]:
        with self._lock, self._errors():
            rows = self._conn.execute(
                "SELECT DISTINCT result_ref FROM tool_call_results WHERE result_ref IS NOT NULL"
            ).fetchall()
        return {r[0] for r in rows}

    def close(self) -> None:
        with self._lock:
            self._trailing.close()
            self._conn.close()

    def _update(
        self, query: str, changes: tuple[Any, ...], run_id: str, step_id: str, attempt: int,
        conn: C | None = None,
    ) -> bool:  # fmt: skip
        with self._lock, self._errors():
            cur = (conn or self._conn).execute(query, (*changes, run_id, step_id, attempt))
        return cur.rowcount == 1
