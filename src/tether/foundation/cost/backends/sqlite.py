"""The SQLite cost store: one table, `cost_calls`, in the file I11's URL names.

Dollars are kept as integer picodollars (1e-12 USD) so SQLite can sum them exactly; prices per
token are well above that grain. The table may share a file with other interfaces' tables; it
has no foreign key to any of them. Its commits trail (`tether.foundation.sqlite.TRAILING`): the
run's next journal append on the same file flushes them.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from tether.foundation.cost.contract import CostRecord, CostTotal, DailyCost
from tether.foundation.sqlite import TRAILING, open_sqlite, sqlite_file

PICO = Decimal("1e12")
GRAIN = Decimal("1e-12")  # read back with the same 12 places PostgreSQL's NUMERIC keeps
_SCHEMA = """
CREATE TABLE IF NOT EXISTS cost_calls (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    workflow TEXT NOT NULL,
    backend TEXT NOT NULL,
    provider TEXT,
    model TEXT NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cache_read_tokens INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    usd_pico INTEGER NOT NULL,
    priced INTEGER NOT NULL,
    recorded_at TEXT NOT NULL,
    UNIQUE (run_id, step_id)
);
CREATE INDEX IF NOT EXISTS cost_calls_workflow ON cost_calls (workflow);
CREATE INDEX IF NOT EXISTS cost_calls_recorded ON cost_calls (recorded_at);
"""
_COLUMNS = (
    "run_id, step_id, workflow, backend, provider, model, input_tokens, output_tokens, "
    "cache_read_tokens, cache_write_tokens, usd_pico, priced, recorded_at"
)
_PLAIN = [c.strip() for c in _COLUMNS.split(",")][:10]  # copied as they are; the rest convert
_TOTAL = (
    "COUNT(*), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0), "
    "COALESCE(SUM(usd_pico), 0), COALESCE(SUM(1 - priced), 0)"
)


def _usd(pico: int) -> Decimal:
    return (Decimal(pico) / PICO).quantize(GRAIN)


def _row(r: sqlite3.Row) -> CostRecord:
    return CostRecord(
        **{k: r[k] for k in _PLAIN},
        usd=_usd(r["usd_pico"]),
        priced=bool(r["priced"]),
        recorded_at=datetime.fromisoformat(r["recorded_at"]),
    )


def _total(values: Sequence[Any]) -> CostTotal:
    calls, inp, out, pico, unpriced = values
    return CostTotal(
        calls=calls,
        input_tokens=inp,
        output_tokens=out,
        usd=_usd(pico),
        unpriced_calls=unpriced,
    )


class SqliteCostStore:
    """I11 on SQLite; `url` is `sqlite:///path/to/file.db`."""

    def __init__(self, url: str) -> None:
        self.path = sqlite_file(url, "cost")
        self._lock = threading.Lock()
        self._conn = open_sqlite(self.path, "the cost ledger", _SCHEMA, synchronous=TRAILING)
        self._conn.row_factory = sqlite3.Row

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> SqliteCostStore:
        return cls(settings.database_url_for("cost"), **options)

    def record(self, row: CostRecord) -> CostRecord:
        usd_pico = int((row.usd * PICO).to_integral_value())
        at = datetime.now(UTC)
        values = (
            row.run_id, row.step_id, row.workflow, row.backend, row.provider, row.model,
            row.input_tokens, row.output_tokens, row.cache_read_tokens, row.cache_write_tokens,
            usd_pico, int(row.priced), at.isoformat(),
        )  # fmt: skip
        with self._lock:
            inserted = self._conn.execute(
                f"INSERT INTO cost_calls ({_COLUMNS}) VALUES ({', '.join('?' * len(values))}) "
                "ON CONFLICT (run_id, step_id) DO NOTHING",
                values,
            ).rowcount
            if not inserted:  # recorded before (a re-executed call): that row stands
                stored = self._conn.execute(
                    f"SELECT {_COLUMNS} FROM cost_calls WHERE run_id = ? AND step_id = ?",
                    (row.run_id, row.step_id),
                ).fetchone()
                return _row(stored)
        # What was stored, without reading it back: the dollars at the table's grain
        return row.model_copy(update={"usd": _usd(usd_pico), "recorded_at": at})

    def calls(self, run_id: str) -> list[CostRecord]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM cost_calls WHERE run_id = ? ORDER BY seq", (run_id,)
            ).fetchall()
        return [_row(r) for r in rows]

    def run_totals(self, run_ids: Sequence[str]) -> dict[str, CostTotal]:
        totals = {run: CostTotal() for run in run_ids}
        if not totals:
            return totals
        with self._lock:
            rows = self._conn.execute(
                f"SELECT run_id, {_TOTAL} FROM cost_calls "
                f"WHERE run_id IN ({', '.join('?' * len(totals))}) GROUP BY run_id",
                list(totals),
            ).fetchall()
        totals.update({r[0]: _total(tuple(r)[1:]) for r in rows})
        return totals

    def workflow_total(self, workflow: str) -> CostTotal:
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_TOTAL} FROM cost_calls WHERE workflow = ?", (workflow,)
            ).fetchone()
        return _total(tuple(row))

    def daily_totals(self, since: date) -> list[DailyCost]:
        # recorded_at is UTC ISO text, so its first ten characters are the UTC day
        with self._lock:
            rows = self._conn.execute(
                f"SELECT substr(recorded_at, 1, 10) AS day, workflow, {_TOTAL} FROM cost_calls "
                "WHERE recorded_at >= ? GROUP BY day, workflow ORDER BY day DESC, workflow",
                (since.isoformat(),),
            ).fetchall()
        return [
            DailyCost(workflow=r[1], day=date.fromisoformat(r[0]), cost=_total(tuple(r)[2:]))
            for r in rows
        ]

    def close(self) -> None:
        self._conn.close()
