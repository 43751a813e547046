"""The limits store in SQLite: counters that survive a worker's restart and are shared by the
workers of one host. Each intent is one `BEGIN IMMEDIATE` transaction, so two processes never
interleave a read and a write of the same counter; a breaker found closed is one SELECT, as
it writes nothing. Commits trail (`tether.foundation.sqlite.TRAILING`): the run's next journal
append on the same file flushes them.

The stdlib driver is no vendor SDK; this sits under backends/ as the storage backend it is.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tether.foundation.limits.kv import Kv, KvLimitsStore
from tether.foundation.sqlite import TRAILING, open_sqlite

if TYPE_CHECKING:
    from tether.settings import Settings

_SCHEMA = "CREATE TABLE IF NOT EXISTS limits_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)"


class _SqliteKv:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def get(self, key: str) -> dict[str, Any] | None:
        row = self._conn.execute("SELECT value FROM limits_state WHERE key = ?", (key,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def get_many(self, keys: Sequence[str]) -> list[dict[str, Any] | None]:
        marks = ", ".join("?" * len(keys))
        rows = self._conn.execute(
            f"SELECT key, value FROM limits_state WHERE key IN ({marks})", tuple(keys)
        ).fetchall()
        found = {key: value for key, value in rows}
        return [None if key not in found else dict(json.loads(found[key])) for key in keys]

    def put(self, key: str, value: dict[str, Any]) -> None:
        self.put_many({key: value})

    def put_many(self, values: dict[str, dict[str, Any]]) -> None:
        rows = ", ".join("(?, ?)" for _ in values)
        self._conn.execute(
            f"INSERT INTO limits_state (key, value) VALUES {rows} "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [p for key, value in values.items() for p in (key, json.dumps(value))],
        )


class SqliteLimitsStore(KvLimitsStore):
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = open_sqlite(self.path, "the limits store", _SCHEMA, synchronous=TRAILING)

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> SqliteLimitsStore:
        """`TETHER_LIMITS_DATABASE_URL` when it names a SQLite file, else the data directory's
        database: counters stay on this host either way (use redis to share them wider)."""
        url = settings.database_url_for("limits")
        if url.startswith("sqlite:///"):
            return cls(url.removeprefix("sqlite:///"))
        return cls(settings.data_path / "tether.db")

    @contextmanager
    def _transaction(self) -> Iterator[Kv]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteKv(self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _peek(self, key: str) -> dict[str, Any] | None:
        # One statement is its own snapshot: no BEGIN IMMEDIATE, no write lock to wait for.
        with self._lock:
            return _SqliteKv(self._conn).get(key)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
