"""The audit log in SQLite (the default): table `guard_audit` in the policy database.

One INSERT + COMMIT per row, in WAL mode, so a worker's audit writes do not block readers
such as `tether inspect`; the commit trails (`tether.foundation.sqlite.TRAILING`): the run's
next journal append on the same file flushes it. The stdlib driver is no vendor SDK; it lives
under backends/ only because it is a storage backend like the PostgreSQL one beside it.
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tether.foundation.policy.contract import AuditRecord
from tether.foundation.sqlite import TRAILING, open_sqlite, sqlite_file

if TYPE_CHECKING:
    from tether.settings import Settings

COLUMNS = (
    "at", "run_id", "workflow", "step_id", "kind", "target", "backend", "who",
    "arguments", "guard", "rule", "outcome", "reason",
)  # fmt: skip
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS guard_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    {", ".join(f"{c} TEXT" for c in COLUMNS)}
);
CREATE INDEX IF NOT EXISTS guard_audit_run ON guard_audit (run_id, id);
"""
_INSERT = (
    f"INSERT INTO guard_audit ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"
)


class SqliteAuditLog:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = open_sqlite(self.path, "the audit log", _SCHEMA, synchronous=TRAILING)

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> SqliteAuditLog:
        return cls(sqlite_file(settings.database_url_for("policy"), "policy"), **options)

    def record(self, entry: AuditRecord) -> None:
        row = [entry.at.isoformat(), *(getattr(entry, c) for c in COLUMNS[1:])]  # `at` first
        with self._lock:
            self._conn.execute(_INSERT, row)

    def query(
        self, *, run_id: str | None = None, outcome: str | None = None, limit: int = 1000
    ) -> list[AuditRecord]:
        sql = f"SELECT {', '.join(COLUMNS)} FROM guard_audit WHERE 1=1"
        params: list[Any] = []
        if run_id is not None:
            sql, params = sql + " AND run_id = ?", [*params, run_id]
        if outcome is not None:
            sql, params = sql + " AND outcome = ?", [*params, outcome]
        with self._lock:
            rows = self._conn.execute(f"{sql} ORDER BY id LIMIT ?", [*params, limit]).fetchall()
        return [_record(dict(zip(COLUMNS, r, strict=True))) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _record(row: dict[str, Any]) -> AuditRecord:
    row["at"] = datetime.fromisoformat(row["at"])
    return AuditRecord.model_validate(row)
