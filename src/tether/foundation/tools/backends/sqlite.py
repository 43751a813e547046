"""tool_call_results in a SQLite file (by default the data dir's tether.db, beside I2's tables
but never joined to them). The store's logic is `_sql.py`'s; here are the file (opened twice:
flushed, and trailing at synchronous=NORMAL), SQLite's dialect and `BEGIN IMMEDIATE` for
`resolve`."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

from tether.foundation.sqlite import TRAILING, open_sqlite, sqlite_file
from tether.foundation.tools.backends._sql import Dialect, SqlToolResults
from tether.foundation.tools.backends._table import ADD_APPROVAL, APPROVAL_INDEX, schema


class SqliteToolResults(SqlToolResults[sqlite3.Connection]):
    """`url` is `sqlite:///path/to/file.db`."""

    _sql = Dialect(placeholder="?", greatest="max", for_update="")
    _driver_error = sqlite3.DatabaseError

    def __init__(self, url: str, synchronous: str = "FULL") -> None:
        self.path = sqlite_file(url, "tools")
        self._where = f"in {self.path}"
        self._lock = threading.Lock()
        self._conn = open_sqlite(
            self.path, "tool_call_results", schema("REAL", "INTEGER"), synchronous=synchronous
        )
        self._trailing = open_sqlite(self.path, "tool_call_results", "", synchronous=TRAILING)
        with self._errors():
            columns = {r[1] for r in self._conn.execute("PRAGMA table_info(tool_call_results)")}
            if "approval" not in columns:
                self._conn.execute(ADD_APPROVAL)
            self._conn.executescript(APPROVAL_INDEX)

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> SqliteToolResults:
        return cls(
            settings.database_url_for("tools"), synchronous=settings.sqlite_synchronous, **options
        )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")
