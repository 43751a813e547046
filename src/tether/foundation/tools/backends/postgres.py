"""tool_call_results on PostgreSQL (psycopg 3). The store's logic is `_sql.py`'s; here are the
connections (the trailing one at synchronous_commit=off: WAL is one sequence, so the run's
next journal commit waits for its flush) and PostgreSQL's dialect (`resolve` locks the row it
reads). The schema is whatever
the connection's search_path names (a URL may carry `?options=-csearch_path%3Dname`).
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from typing import Any

import psycopg

from tether.foundation.tools.backends._sql import Dialect, SqlToolResults
from tether.foundation.tools.backends._table import ADD_APPROVAL, APPROVAL_INDEX, schema
from tether.settings import redact_dsn


class PostgresToolResults(SqlToolResults[psycopg.Connection[Any]]):
    """`url` is a libpq URL, `postgresql://user@host:port/db`."""

    _sql = Dialect(placeholder="%s", greatest="GREATEST", for_update=" FOR UPDATE")
    _driver_error = psycopg.OperationalError

    def __init__(self, url: str) -> None:
        self._where = f"on {redact_dsn(url)}"
        self._lock = threading.Lock()
        with self._errors():
            self._conn = psycopg.connect(url, autocommit=True)
            with self._conn.transaction():
                # Processes starting together would race IF NOT EXISTS into a duplicate type.
                self._conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext('tether:tool_call_results:' "
                    "|| current_schema()))"
                )
                self._conn.execute(schema("DOUBLE PRECISION", "BOOLEAN"))
                self._conn.execute(ADD_APPROVAL.replace("ADD COLUMN", "ADD COLUMN IF NOT EXISTS"))
                self._conn.execute(APPROVAL_INDEX)
            self._trailing = psycopg.connect(url, autocommit=True)
            self._trailing.execute("SET synchronous_commit = off")

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> PostgresToolResults:
        return cls(settings.database_url_for("tools"), **options)

    def _transaction(self) -> AbstractContextManager[object]:
        return self._conn.transaction()
