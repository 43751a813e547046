"""Opening an interface's own SQLite file: one place for the URL, the pragmas and the error.

I1's tool-call results, I9's audit log, I10's counters and I11's costs each keep a small table
in SQLite: the data directory's tether.db beside I2's tables by default, or a file of their own
when `TETHER_<INTERFACE>_DATABASE_URL` names one. They open it the same way: WAL, so their
writes never block a reader such as `tether inspect`; a busy timeout long enough to outlast a
storm of worker commits; and a file that cannot be used named in one line. (The checkpointer
keeps per-thread connections that watch each other's commits: checkpoint/backends/sqlite/.)
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tether.errors import ConfigurationError, DatabaseUnavailable

BUSY_TIMEOUT = 30.0  # seconds a write waits for another process's transaction
# Checkpoint the WAL into the database once it holds this many pages (SQLite's default: 1000).
# Until its first checkpoint a WAL grows, and each commit's fsync then also commits the file's
# new size to the filesystem journal: measured here, 400 us a commit instead of 200. A journal
# write is one or two pages, so a fresh WAL (a new data dir, or after the last connection to
# it closed) spent its first 600-odd commits at that price; at 256 it spends about 150, and a
# small checkpoint costs less than it saves. Durability is the same: every flushed commit is
# fsynced.
WAL_AUTOCHECKPOINT = 256
# A trailing write: committed without waiting for the disk. In WAL mode a file has one log, so
# the next commit at synchronous=FULL on the same file (the run's next journal append) fsyncs
# it along with every frame before it. A SIGKILL loses nothing committed either way (the OS
# holds it); a power loss or OS crash before that flush may lose it, and then everything logged
# after it too, so only writes whose loss a replay tolerates trail (DESIGN, Semantics).
TRAILING = "NORMAL"


def sqlite_file(url: str, interface: str) -> Path:
    """The file a `sqlite:///path` URL names; anything else is a configuration error."""
    if not url.startswith("sqlite:///"):
        raise ConfigurationError(
            f"the sqlite {interface} backend needs a sqlite:/// URL; set TETHER_"
            f"{interface.upper()}_DATABASE_URL or choose another backend for {interface}"
        )
    return Path(url.removeprefix("sqlite:///"))


def open_sqlite(
    path: Path, what: str, schema: str, *, synchronous: str = "FULL"
) -> sqlite3.Connection:
    """One autocommit connection with `schema` applied, for use by several threads behind the
    caller's lock. `what` names the table in the error, e.g. "the audit log"; `synchronous`
    is FULL for writes that must be on disk when they return, TRAILING for the rest."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT}")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.executescript(schema)
    except (OSError, sqlite3.Error) as e:
        raise DatabaseUnavailable(f"{what} in {path} cannot be used: {e}") from e
    return conn
