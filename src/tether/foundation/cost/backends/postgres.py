"""The PostgreSQL cost store (psycopg 3): one table, `cost_calls`, in the connection's schema.

Dollars are NUMERIC, summed exactly by the server. The table has no foreign key to any other
interface's tables, so I11 can be pointed at its own database with one URL.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row

from tether.errors import DatabaseUnavailable
from tether.foundation.cost.contract import CostRecord, CostTotal, DailyCost
from tether.settings import redact_dsn

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cost_calls (
    seq BIGSERIAL PRIMARY KEY,
    run_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    workflow TEXT NOT NULL,
    backend TEXT NOT NULL,
    provider TEXT,
    model TEXT NOT NULL,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cache_read_tokens BIGINT NOT NULL,
    cache_write_tokens BIGINT NOT NULL,
    usd NUMERIC(30, 12) NOT NULL,
    priced BOOLEAN NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (run_id, step_id)
);
CREATE INDEX IF NOT EXISTS cost_calls_workflow ON cost_calls (workflow);
CREATE INDEX IF NOT EXISTS cost_calls_recorded ON cost_calls (recorded_at);
"""
_FIELDS = (
    "run_id", "step_id", "workflow", "backend", "provider", "model", "input_tokens",
    "output_tokens", "cache_read_tokens", "cache_write_tokens", "usd", "priced",
)  # fmt: skip
_COLUMNS = ", ".join((*_FIELDS, "recorded_at"))
_TOTAL = (
    "COUNT(*) AS calls, COALESCE(SUM(input_tokens), 0) AS input_tokens, "
    "COALESCE(SUM(output_tokens), 0) AS output_tokens, COALESCE(SUM(usd), 0) AS usd, "
    "COUNT(*) FILTER (WHERE NOT priced) AS unpriced_calls"
)


def _total(row: dict[str, Any]) -> CostTotal:
    return CostTotal(**{**row, "usd": Decimal(row["usd"])})


def _record(row: dict[str, Any]) -> CostRecord:
    return CostRecord(**row)


class PostgresCostStore:
    """I11 on PostgreSQL; `url` is a libpq URL (`postgresql://user@host/db?options=...`)."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._lock = threading.Lock()
        try:
            self._conn = psycopg.connect(url, autocommit=True, row_factory=dict_row)
            self._conn.execute(_SCHEMA)
            # Cost rows trail: the run's next journal commit on this server flushes the WAL up
            # to its own record, and with it theirs (tether.foundation.sqlite.TRAILING).
            self._conn.execute("SET synchronous_commit = off")
        except psycopg.Error as e:
            raise DatabaseUnavailable(f"cost database {redact_dsn(url)} cannot be used: {e}") from e

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> PostgresCostStore:
        return cls(settings.database_url_for("cost"), **options)

    @contextmanager
    def _cursor(self) -> Iterator[psycopg.Cursor[dict[str, Any]]]:
        with self._lock:
            try:
                with self._conn.cursor() as cur:
                    yield cur
            except psycopg.OperationalError as e:
                raise DatabaseUnavailable(
                    f"cost database {redact_dsn(self._url)} cannot be used: {e}"
                ) from e

    def record(self, row: CostRecord) -> CostRecord:
        values = row.model_dump(include=set(_FIELDS))
        with self._cursor() as cur:
            cur.execute(
                f"INSERT INTO cost_calls ({', '.join(_FIELDS)}) "
                f"VALUES ({', '.join(f'%({f})s' for f in _FIELDS)}) "
                f"ON CONFLICT (run_id, step_id) DO NOTHING RETURNING {_COLUMNS}",
                values,
            )
            stored = cur.fetchone()
            if stored is None:  # recorded before (a re-executed call): that row stands
                cur.execute(
                    f"SELECT {_COLUMNS} FROM cost_calls WHERE run_id = %s AND step_id = %s",
                    (row.run_id, row.step_id),
                )
                stored = cur.fetchone()
        assert stored is not None  # inserted now or by the earlier record of this step
        return _record(stored)

    def calls(self, run_id: str) -> list[CostRecord]:
        with self._cursor() as cur:
            cur.execute(
                f"SELECT {_COLUMNS} FROM cost_calls WHERE run_id = %s ORDER BY seq", (run_id,)
            )
            return [_record(r) for r in cur.fetchall()]

    def run_totals(self, run_ids: Sequence[str]) -> dict[str, CostTotal]:
        totals = {run: CostTotal() for run in run_ids}
        if not totals:
            return totals
        with self._cursor() as cur:
            cur.execute(
                f"SELECT run_id, {_TOTAL} FROM cost_calls WHERE run_id = ANY(%s) GROUP BY run_id",
                (list(totals),),
            )
            rows = cur.fetchall()
        totals.update({r.pop("run_id"): _total(r) for r in rows})
        return totals

    def workflow_total(self, workflow: str) -> CostTotal:
        with self._cursor() as cur:
            cur.execute(f"SELECT {_TOTAL} FROM cost_calls WHERE workflow = %s", (workflow,))
            row = cur.fetchone()
        assert row is not None  # an aggregate always returns one row
        return _total(row)

    def daily_totals(self, since: date) -> list[DailyCost]:
        with self._cursor() as cur:
            cur.execute(
                "SELECT (recorded_at AT TIME ZONE 'UTC')::date AS day, workflow, "
                f"{_TOTAL} FROM cost_calls WHERE recorded_at >= (%s::date AT TIME ZONE 'UTC') "
                "GROUP BY day, workflow ORDER BY day DESC, workflow",
                (since,),
            )
            rows = cur.fetchall()
        return [
            DailyCost(workflow=r.pop("workflow"), day=r.pop("day"), cost=_total(r)) for r in rows
        ]

    def close(self) -> None:
        self._conn.close()
