"""The SQLite broker: one table, `hitl_requests`, in the file I6's URL names.

A request is a JSON document under a version number; a change is an UPDATE guarded by the
version read, so of two concurrent decisions (in any processes) exactly one lands. The table
may share a file with other interfaces' tables; it has no foreign key to any of them.
"""

from __future__ import annotations

import threading
from typing import Any

from tether.foundation.hitl.contract import ApprovalRequest, Broker
from tether.foundation.sqlite import open_sqlite, sqlite_file

_SCHEMA = """
CREATE TABLE IF NOT EXISTS hitl_requests (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    run_id TEXT NOT NULL,
    state TEXT NOT NULL,
    version INTEGER NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS hitl_requests_run ON hitl_requests (run_id);
CREATE INDEX IF NOT EXISTS hitl_requests_state ON hitl_requests (state);
"""


class SqliteHITLBroker(Broker):
    """I6 on SQLite; `url` is `sqlite:///path/to/file.db`."""

    def __init__(self, url: str) -> None:
        self.path = sqlite_file(url, "hitl")
        self._lock = threading.Lock()
        self._conn = open_sqlite(self.path, "the approval requests", _SCHEMA)

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> SqliteHITLBroker:
        return cls(settings.database_url_for("hitl"), **options)

    def _load(self, request_id: str) -> tuple[str, int] | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT doc, version FROM hitl_requests WHERE id = ?", (request_id,)
            ).fetchone()
        return None if row is None else (row[0], row[1])

    def _insert(self, request: ApprovalRequest, doc: str) -> bool:
        with self._lock:
            cur = self._conn.execute(
                "INSERT INTO hitl_requests (id, run_id, state, version, doc) "
                "VALUES (?, ?, ?, 1, ?) ON CONFLICT (id) DO NOTHING",
                (request.id, request.run_id, request.state.value, doc),
            )
            return cur.rowcount == 1

    def _swap(self, request: ApprovalRequest, doc: str, version: int) -> bool:
        with self._lock:
            cur = self._conn.execute(
                "UPDATE hitl_requests SET doc = ?, state = ?, version = version + 1 "
                "WHERE id = ? AND version = ?",
                (doc, request.state.value, request.id, version),
            )
            return cur.rowcount == 1

    def _select(self, state: str | None, run_id: str | None) -> list[str]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT doc FROM hitl_requests WHERE (? IS NULL OR state = ?) "
                "AND (? IS NULL OR run_id = ?) ORDER BY seq",
                (state, state, run_id, run_id),
            ).fetchall()
        return [r[0] for r in rows]

    def close(self) -> None:
        self._conn.close()
