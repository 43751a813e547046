"""tool_call_results in a SQLite file (by default the data dir's tether.db, beside I2's tables
but never joined to them).

One connection behind a lock: every write is a single statement committed on its own, except
`resolve`, a read-modify-write under `BEGIN IMMEDIATE`.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from tether.errors import DatabaseUnavailable
from tether.foundation.sqlite import open_sqlite, sqlite_file
from tether.foundation.tools.backends._table import COLUMNS, SELECT, record, schema, values
from tether.foundation.tools.results import (
    CallStatus,
    Resolution,
    ToolCallRecord,
    apply_resolution,
)

_LATEST = f"{SELECT} WHERE run_id = ? AND step_id = ? ORDER BY attempt DESC LIMIT 1"
# The attempt is the intent's or one past the last, whichever is higher; a live row at
# (run, step) makes the insert a no-op through the partial unique index.
_BEGIN = f"""
INSERT INTO tool_call_results ({", ".join(COLUMNS)})
SELECT ?, ?, max(?, coalesce((SELECT max(attempt) + 1 FROM tool_call_results
                               WHERE run_id = ? AND step_id = ?), 0)),
       {", ".join("?" * (len(COLUMNS) - 3))}
WHERE true ON CONFLICT DO NOTHING RETURNING attempt
"""
_UPDATE = "UPDATE tool_call_results SET {} WHERE run_id = ? AND step_id = ? AND attempt = ?"
_SET_ALL = ", ".join(f"{c} = ?" for c in COLUMNS[3:])


class SqliteToolResults:
    """`url` is `sqlite:///path/to/file.db`."""

    def __init__(self, url: str, synchronous: str = "FULL") -> None:
        self.path = sqlite_file(url, "tools")
        self._lock = threading.Lock()
        self._conn = open_sqlite(
            self.path, "tool_call_results", schema("REAL", "INTEGER"), synchronous=synchronous
        )

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> SqliteToolResults:
        return cls(
            settings.database_url_for("tools"), synchronous=settings.sqlite_synchronous, **options
        )

    def begin(self, intent: ToolCallRecord) -> tuple[ToolCallRecord, bool]:
        row = values(intent)
        params = (*row[:2], intent.attempt, intent.run_id, intent.step_id, *row[3:])
        with self._lock, self._errors():
            inserted = self._conn.execute(_BEGIN, params).fetchone()
            if inserted is not None:
                return intent.model_copy(update={"attempt": inserted[0]}), True
            live = self._conn.execute(_LATEST, (intent.run_id, intent.step_id)).fetchone()
        return record(live), False

    def finish(
        self, run_id: str, step_id: str, attempt: int, *, result: str | None,
        result_ref: str | None, finished_at: float,
    ) -> None:  # fmt: skip
        self._update(run_id, step_id, attempt, status=CallStatus.FINISHED.value, result=result,
                     result_ref=result_ref, finished_at=finished_at)  # fmt: skip

    def fail(
        self, run_id: str, step_id: str, attempt: int, *, error_type: str, error: str,
        interrupted: bool, finished_at: float,
    ) -> bool:  # fmt: skip
        return self._update(run_id, step_id, attempt, status=CallStatus.FAILED.value,
                            error_type=error_type, error=error, interrupted=interrupted,
                            finished_at=finished_at)  # fmt: skip

    def lookup(self, run_id: str, step_id: str) -> ToolCallRecord | None:
        with self._lock, self._errors():
            row = self._conn.execute(_LATEST, (run_id, step_id)).fetchone()
        return None if row is None else record(row)

    def resolve(
        self, run_id: str, step_id: str, resolution: Resolution, result: str | None,
        at: float,
    ) -> ToolCallRecord:  # fmt: skip
        with self._lock, self._errors():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                row = self._conn.execute(_LATEST, (run_id, step_id)).fetchone()
                latest = None if row is None else record(row)
                new = apply_resolution(latest, run_id, step_id, resolution, result, at)
                self._conn.execute(
                    _UPDATE.format(_SET_ALL), (*values(new)[3:], run_id, step_id, new.attempt)
                )
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        return new

    def forget(self, run_ids: Sequence[str]) -> int:
        deleted = 0
        with self._lock, self._errors():
            for i in range(0, len(run_ids), 500):
                chunk = list(run_ids[i : i + 500])
                marks = ",".join("?" * len(chunk))
                deleted += self._conn.execute(
                    f"DELETE FROM tool_call_results WHERE run_id IN ({marks})", chunk
                ).rowcount
        return deleted

    def blob_refs(self) -> set[str]:
        with self._lock, self._errors():
            rows = self._conn.execute(
                "SELECT DISTINCT result_ref FROM tool_call_results WHERE result_ref IS NOT NULL"
            ).fetchall()
        return {r[0] for r in rows}

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _update(self, run_id: str, step_id: str, attempt: int, **changes: Any) -> bool:
        sets = ", ".join(f"{c} = ?" for c in changes)
        sql = _UPDATE.format(sets) + " AND status = 'started'"
        with self._lock, self._errors():
            cur = self._conn.execute(sql, (*changes.values(), run_id, step_id, attempt))
        return cur.rowcount == 1

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.DatabaseError as e:
            raise DatabaseUnavailable(f"tool_call_results in {self.path}: {e}") from e
