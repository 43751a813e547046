"""The in-memory audit log: the test double beside the contract, and the log of a one-off run."""

from __future__ import annotations

import threading
from typing import Any

from tether.foundation.policy.contract import AuditRecord


class MemoryAuditLog:
    def __init__(self) -> None:
        self._rows: list[AuditRecord] = []
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> MemoryAuditLog:
        return cls(**options)

    def record(self, entry: AuditRecord) -> None:
        with self._lock:
            self._rows.append(entry)

    def query(
        self, *, run_id: str | None = None, outcome: str | None = None, limit: int = 1000
    ) -> list[AuditRecord]:
        with self._lock:
            rows = [
                r
                for r in self._rows
                if (run_id is None or r.run_id == run_id)
                and (outcome is None or r.outcome == outcome)
            ]
        return rows[:limit]

    def close(self) -> None:
        pass
