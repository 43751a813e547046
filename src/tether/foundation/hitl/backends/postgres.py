"""The PostgreSQL broker (psycopg 3): one table, `hitl_requests`, in the connection's schema.

A request is a JSONB document under a version number; a change is an UPDATE guarded by the
version read, so of two concurrent decisions exactly one lands. No foreign key to any other
interface's tables, so I6 can be pointed at its own database with one URL.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from tether.errors import DatabaseUnavailable
from tether.foundation.hitl.contract import ApprovalRequest, Broker
from tether.settings import redact_dsn

_SCHEMA = """
CREATE TABLE IF NOT EXISTS hitl_requests (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    run_id TEXT NOT NULL,
    state TEXT NOT NULL,
    version BIGINT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS hitl_requests_run ON hitl_requests (run_id);
CREATE INDEX IF NOT EXISTS hitl_requests_state ON hitl_requests (state);
"""


class PostgresHITLBroker(Broker):
    """I6 on PostgreSQL; `url` is a libpq URL (`postgresql://user@host/db?options=...`)."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._lock = threading.Lock()
        try:
            self._conn = psycopg.connect(url, autocommit=True)
            self._conn.execute(_SCHEMA)
        except psycopg.Error as e:
            raise DatabaseUnavailable(f"hitl database {redact_dsn(url)} cannot be used: {e}") from e

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> PostgresHITLBroker:
        return cls(settings.database_url_for("hitl"), **options)

    @contextmanager
    def _cursor(self) -> Iterator[psycopg.Cursor[Any]]:
        with self._lock:
            try:
                with self._conn.cursor() as cur:
                    yield cur
            except psycopg.OperationalError as e:
                raise DatabaseUnavailable(
                    f"hitl database {redact_dsn(self._url)} cannot be used: {e}"
                ) from e

    def _load(self, request_id: str) -> tuple[str, int] | None:
        with self._cursor() as cur:
            cur.execute("SELECT doc, version FROM hitl_requests WHERE id = %s", (request_id,))
            row = cur.fetchone()
        return None if row is None else (row[0], row[1])

    def _insert(self, request: ApprovalRequest, doc: str) -> bool:
        with self._cursor() as cur:
            cur.execute(
                "INSERT INTO hitl_requests (id, run_id, state, version, doc) "
                "VALUES (%s, %s, %s, 1, %s) ON CONFLICT (id) DO NOTHING",
                (request.id, request.run_id, request.state.value, doc),
            )
            return cur.rowcount == 1

    def _swap(self, request: ApprovalRequest, doc: str, version: int) -> bool:
        with self._cursor() as cur:
            cur.execute(
                "UPDATE hitl_requests SET doc = %s, state = %s, version = version + 1 "
                "WHERE id = %s AND version = %s",
                (doc, request.state.value, request.id, version),
            )
            return cur.rowcount == 1

    def _select(self, state: str | None, run_id: str | None) -> list[str]:
        with self._cursor() as cur:
            cur.execute(
                "SELECT doc FROM hitl_requests WHERE (%s::text IS NULL OR state = %s) "
                "AND (%s::text IS NULL OR run_id = %s) ORDER BY seq",
                (state, state, run_id, run_id),
            )
            return [r[0] for r in cur.fetchall()]

    def close(self) -> None:
        self._conn.close()
