"""The audit log in PostgreSQL (psycopg 3): table `guard_audit` in the policy database.

The schema comes from the URL's `search_path` (`?options=-csearch_path%3Dmyschema`), so two
deployments, or two tests, can share one database without sharing rows.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from tether.errors import DatabaseUnavailable
from tether.foundation.policy.contract import AuditRecord
from tether.settings import redact_dsn

if TYPE_CHECKING:
    from tether.settings import Settings

COLUMNS = (
    "at", "run_id", "workflow", "step_id", "kind", "target", "backend", "who",
    "arguments", "guard", "rule", "outcome", "reason",
)  # fmt: skip
_SCHEMA = """
CREATE TABLE IF NOT EXISTS guard_audit (
    id BIGSERIAL PRIMARY KEY,
    at TIMESTAMPTZ NOT NULL,
    run_id TEXT NOT NULL, workflow TEXT NOT NULL, step_id TEXT NOT NULL,
    kind TEXT NOT NULL, target TEXT NOT NULL, backend TEXT, who TEXT,
    arguments TEXT NOT NULL, guard TEXT NOT NULL, rule TEXT NOT NULL,
    outcome TEXT NOT NULL, reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS guard_audit_run ON guard_audit (run_id, id);
"""
_INSERT = (
    f"INSERT INTO guard_audit ({', '.join(COLUMNS)}) VALUES ({', '.join('%s' for _ in COLUMNS)})"
)


class PostgresAuditLog:
    def __init__(self, url: str) -> None:
        import psycopg

        self._psycopg = psycopg
        self._lock = threading.Lock()
        try:
            self._conn = psycopg.connect(url, autocommit=True)
            self._conn.execute(_SCHEMA)
            # Audit rows trail: the run's next journal commit on this server flushes the WAL
            # up to its own record, and with it theirs (tether.foundation.sqlite.TRAILING).
            self._conn.execute("SET synchronous_commit = off")
        except psycopg.Error as e:
            raise DatabaseUnavailable(f"audit log at {redact_dsn(url)}: {e}") from e

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> PostgresAuditLog:
        return cls(settings.database_url_for("policy"), **options)

    def _execute(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                cursor = self._conn.execute(sql, params)
                return cursor.fetchall() if cursor.description else []
            except self._psycopg.OperationalError as e:
                raise DatabaseUnavailable(f"audit log: {e}") from e

    def record(self, entry: AuditRecord) -> None:
        self._execute(_INSERT, [getattr(entry, c) for c in COLUMNS])

    def query(
        self, *, run_id: str | None = None, outcome: str | None = None, limit: int = 1000
    ) -> list[AuditRecord]:
        sql = f"SELECT {', '.join(COLUMNS)} FROM guard_audit WHERE true"
        params: list[Any] = []
        if run_id is not None:
            sql, params = sql + " AND run_id = %s", [*params, run_id]
        if outcome is not None:
            sql, params = sql + " AND outcome = %s", [*params, outcome]
        rows = self._execute(f"{sql} ORDER BY id LIMIT %s", [*params, limit])
        return [AuditRecord.model_validate(dict(zip(COLUMNS, r, strict=True))) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
