"""The in-memory cost store: the contract's test double and the store for throwaway runs."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from tether.foundation.cost.contract import CostRecord, CostTotal, DailyCost


def total(rows: Iterable[CostRecord]) -> CostTotal:
    """Sum records in Python; the memory store's roll-up and the reference the SQL ones match."""
    rows = list(rows)
    return CostTotal(
        calls=len(rows),
        input_tokens=sum(r.input_tokens for r in rows),
        output_tokens=sum(r.output_tokens for r in rows),
        usd=sum((r.usd for r in rows), Decimal(0)),
        unpriced_calls=sum(1 for r in rows if not r.priced),
    )


class MemoryCostStore:
    """Rows in a dict keyed by (run_id, step_id), in insertion order."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], CostRecord] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> MemoryCostStore:
        return cls(**options)

    def record(self, row: CostRecord) -> CostRecord:
        key = (row.run_id, row.step_id)
        with self._lock:
            if key not in self._rows:
                self._rows[key] = row.model_copy(update={"recorded_at": datetime.now(UTC)})
            return self._rows[key]

    def calls(self, run_id: str) -> list[CostRecord]:
        with self._lock:
            return [r for r in self._rows.values() if r.run_id == run_id]

    def run_totals(self, run_ids: Sequence[str]) -> dict[str, CostTotal]:
        with self._lock:
            rows = list(self._rows.values())
        return {run: total(r for r in rows if r.run_id == run) for run in run_ids}

    def workflow_total(self, workflow: str) -> CostTotal:
        with self._lock:
            return total(r for r in self._rows.values() if r.workflow == workflow)

    def daily_totals(self, since: date) -> list[DailyCost]:
        groups: dict[tuple[date, str], list[CostRecord]] = {}
        with self._lock:
            for r in self._rows.values():
                assert r.recorded_at is not None  # stamped by `record`
                day = r.recorded_at.astimezone(UTC).date()
                if day >= since:
                    groups.setdefault((day, r.workflow), []).append(r)
        return [
            DailyCost(workflow=workflow, day=day, cost=total(rows))
            for (day, workflow), rows in sorted(
                groups.items(), key=lambda g: (-g[0][0].toordinal(), g[0][1])
            )
        ]

    def close(self) -> None:
        """Nothing to release."""
