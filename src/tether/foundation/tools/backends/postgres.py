"""tool_call_results on PostgreSQL (psycopg 3).

One autocommit connection behind a lock: the intent insert is one statement whose conflict on
the partial unique index is the "a live call exists" answer; `resolve` locks the row. The
schema is whatever the connection's search_path names (a URL may carry
`?options=-csearch_path%3Dname`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg

from tether.errors import DatabaseUnavailable
from tether.foundation.tools.backends._table import COLUMNS, SELECT, record, schema, values
from tether.foundation.tools.results import (
    CallStatus,
    Resolution,
    ToolCallRecord,
    apply_resolution,
)
from tether.settings import redact_dsn

_LATEST = f"{SELECT} WHERE run_id = %s AND step_id = %s ORDER BY attempt DESC LIMIT 1"
_BEGIN = f"""
INSERT INTO tool_call_results ({", ".join(COLUMNS)})
SELECT %s, %s, GREATEST(%s, COALESCE((SELECT max(attempt) + 1 FROM tool_call_results
                                      WHERE run_id = %s AND step_id = %s), 0)),
       {", ".join(["%s"] * (len(COLUMNS) - 3))}
ON CONFLICT DO NOTHING RETURNING attempt
"""
_UPDATE = "UPDATE tool_call_results SET {} WHERE run_id = %s AND step_id = %s AND attempt = %s"
_SET_ALL = ", ".join(f"{c} = %s" for c in COLUMNS[3:])


class PostgresToolResults:
    """`url` is a libpq URL, `postgresql://user@host:port/db`."""

    def __init__(self, url: str) -> None:
        self._dsn = redact_dsn(url)
        self._lock = threading.Lock()
        with self._errors():
            self._conn = psycopg.connect(url, autocommit=True)
            self._conn.execute(schema("DOUBLE PRECISION", "BOOLEAN"))

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> PostgresToolResults:
        return cls(settings.database_url_for("tools"), **options)

    def begin(self, intent: ToolCallRecord) -> tuple[ToolCallRecord, bool]:
        row = values(intent)
        params = (*row[:2], intent.attempt, intent.run_id, intent.step_id, *row[3:])
        with self._lock, self._errors():
            inserted = self._conn.execute(_BEGIN, params).fetchone()
            if inserted is not None:
                return intent.model_copy(update={"attempt": inserted[0]}), True
            live = self._conn.execute(_LATEST, (intent.run_id, intent.step_id)).fetchone()
        assert live is not None  # the conflict that stopped the insert is this row
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
        with self._lock, self._errors(), self._conn.transaction():
            row = self._conn.execute(_LATEST + " FOR UPDATE", (run_id, step_id)).fetchone()
            latest = None if row is None else record(row)
            new = apply_resolution(latest, run_id, step_id, resolution, result, at)
            self._conn.execute(
                _UPDATE.format(_SET_ALL), (*values(new)[3:], run_id, step_id, new.attempt)
            )
        return new

    def forget(self, run_ids: Sequence[str]) -> int:
        with self._lock, self._errors():
            cur = self._conn.execute(
                "DELETE FROM tool_call_results WHERE run_id = ANY(%s)", (list(run_ids),)
            )
            return cur.rowcount

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
        sets = ", ".join(f"{c} = %s" for c in changes)
        sql = _UPDATE.format(sets) + " AND status = 'started'"
        with self._lock, self._errors():
            cur = self._conn.execute(sql, (*changes.values(), run_id, step_id, attempt))
        return cur.rowcount == 1

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except psycopg.OperationalError as e:
            raise DatabaseUnavailable(f"tool_call_results on {self._dsn}: {e}") from e
