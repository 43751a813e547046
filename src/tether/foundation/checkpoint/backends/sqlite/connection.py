"""Connections to the one SQLite file: one per thread, WAL, and SQLite's errors as tether's.

`SqliteDatabase` is to the SQLite checkpointer what `postgres/database.py` is to PostgreSQL's:
the `Database` the shared control flow (`checkpoint/sql/`) runs on. SQLite has no server clock,
so each connection registers `tether_now()`, the host's clock, as the dialect's `now`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from tether.errors import DatabaseUnavailable, RunStateError
from tether.foundation.sqlite import WAL_AUTOCHECKPOINT

T = TypeVar("T")
_WATCH_INTERVAL = 0.005  # seconds between looks at PRAGMA data_version

# sqlite3 binds str, int, float and bytearray as they are, but asks each bytes parameter to
# adapt itself first: a dict miss and two failed attribute lookups, one formatting an
# AttributeError. Ids, hashes and values are bytes here (four in a LangGraph write row), and
# that asking was a tenth of a row's instructions. Registered, bytes are their own adapter:
# the same bytes are bound, in one lookup.
sqlite3.register_adapter(bytes, bytes)


class ErrorMap:
    """SQLite's errors as tether's, naming the file and what to do. A class, not a
    `contextlib.contextmanager`, and one instance per database: it wraps every append."""

    def __init__(self, path: Path, busy_timeout: float) -> None:
        self.path, self.busy_timeout = path, busy_timeout

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, e: BaseException | None, tb: Any) -> None:
        if isinstance(e, sqlite3.IntegrityError):  # an entry written twice: the caller's
            raise RunStateError(f"already exists: {e}") from e
        if not isinstance(e, sqlite3.DatabaseError):
            return
        msg = str(e)
        if getattr(e, "sqlite_errorname", "") == "SQLITE_FULL" or "disk is full" in msg:
            raise DatabaseUnavailable(_disk_full(self.path, msg)) from e
        if "locked" in msg or "busy" in msg:
            raise DatabaseUnavailable(
                f"database {self.path} is locked by another process "
                f"(waited {self.busy_timeout:g} s): {msg}"
            ) from e
        if "not a database" in msg or "malformed" in msg or "corrupt" in msg:
            raise DatabaseUnavailable(
                f"database {self.path} is corrupt or not a tether database ({msg}); "
                "move it aside or point TETHER_DATABASE_URL elsewhere"
            ) from e
        raise DatabaseUnavailable(f"database {self.path} cannot be used: {msg}") from e


def _disk_full(path: Path, msg: str) -> str:
    """Name the filesystem that filled up, so the message says where to make room. SQLite
    rolls the statement back: nothing committed is lost, and the write can simply be made
    again once there is space."""
    mount = path.resolve().parent
    while not os.path.ismount(mount) and mount != mount.parent:
        mount = mount.parent
    try:
        free = f"{shutil.disk_usage(mount).free // 1024} KiB free"
    except OSError:
        free = "free space unknown"
    return (
        f"database {path}: the disk it is on (the filesystem mounted at {mount}, {free}) is "
        f"full ({msg}); nothing was committed, free space there and the run resumes"
    )


class SqliteDatabase:
    """Per-thread connections (the heartbeat thread never shares the runs'), `BEGIN IMMEDIATE`
    transactions, and errors that name the file and say what to do."""

    def __init__(self, path: Path, synchronous: str, busy_timeout: float) -> None:
        self.path = path
        self._synchronous = synchronous
        self._busy_timeout = busy_timeout
        self.errors = ErrorMap(path, busy_timeout)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        # This process's writers take turns here rather than in SQLite's busy handler, which
        # sleeps 1, 2, 5 ... 100 ms between looks at a lock another thread may have released
        # microseconds later: with a worker's 16 runs finishing steps at once, a fifth of the
        # wall time went to those sleeps.
        self._writer = threading.Lock()

    def conn(self) -> sqlite3.Connection:
        """This thread's connection."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path,
                isolation_level=None,
                check_same_thread=False,
                timeout=self._busy_timeout,
            )
            conn.row_factory = sqlite3.Row
            conn.create_function("tether_now", 0, time.time)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT}")
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            self._local.conn = conn
            self._local.cursor = conn.cursor()
            with self._lock:
                self._all.append(conn)
        return conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Under SQLite's one writer lock, taken at `BEGIN` so a read never has to upgrade."""
        conn = self.conn()
        with self._writer, self.errors:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def tx(self, fn: Callable[[sqlite3.Connection], T], /) -> T:
        with self.transaction() as c:
            return fn(c)

    def one(self, query: str, args: Sequence[Any] = (), /) -> list[Any]:
        with self.errors:
            return self.conn().execute(query, args).fetchall()

    def rowcount(self, query: str, args: Sequence[Any], /) -> int:
        """The hot-path append, on this thread's one cursor: `Connection.execute` makes a new
        cursor a call, ~0.3 µs of a step's ~20."""
        with self._writer, self.errors:
            try:
                cursor: sqlite3.Cursor = self._local.cursor
            except AttributeError:
                self.conn()
                cursor = self._local.cursor
            return cursor.execute(query, args).rowcount

    def wait(self, timeout: float) -> None:
        """SQLite cannot notify another process, but `PRAGMA data_version` tells a connection
        that another one committed: watch it every few milliseconds (a read of a counter, no
        I/O) and return at the first change, or when the next timer is due, or at `timeout`.
        So `send_event` wakes a worker in milliseconds, whatever the poll interval."""
        conn = self.conn()  # this thread's own connection: it sees everyone else's commits
        with self.errors:
            due = conn.execute(
                "SELECT min(wake_at) FROM runs WHERE wake_at IS NOT NULL "
                "AND status IN ('sleeping', 'waiting', 'paused')"
            ).fetchone()[0]
            deadline = time.monotonic() + timeout
            if due is not None:
                deadline = min(deadline, time.monotonic() + max(0.0, due - time.time()))
            seen = conn.execute("PRAGMA data_version").fetchone()[0]
            while (left := deadline - time.monotonic()) > 0:
                time.sleep(min(_WATCH_INTERVAL, left))
                if conn.execute("PRAGMA data_version").fetchone()[0] != seen:
                    return

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._all.clear()
        self._local = threading.local()
