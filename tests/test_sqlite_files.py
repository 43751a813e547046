"""Every SQLite connection tether opens on the data dir's file keeps the WAL short: I2's own
per-thread connections and the other interfaces' stores checkpoint it at WAL_AUTOCHECKPOINT
pages, whichever of them commits past it, with every flushed commit still fsynced."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tether import Tether
from tether.errors import DatabaseUnavailable
from tether.foundation.sqlite import WAL_AUTOCHECKPOINT, open_sqlite


def test_the_checkpointers_connections_checkpoint_the_wal_early(
    make_tether: Callable[..., Tether],
) -> None:
    t = make_tether("sqlite")
    conn = t.checkpointer._db.conn()  # type: ignore[attr-defined]
    assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == WAL_AUTOCHECKPOINT
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_an_interfaces_store_opens_its_file_the_same_way(tmp_path: Path) -> None:
    conn = open_sqlite(tmp_path / "x.db", "a table", "CREATE TABLE t (a)")
    assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == WAL_AUTOCHECKPOINT
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert WAL_AUTOCHECKPOINT < 1000  # SQLite's default, which this exists to undercut


def test_a_file_that_cannot_be_opened_is_named_in_one_line(tmp_path: Path) -> None:
    not_a_db = tmp_path / "audit.db"
    not_a_db.write_bytes(b"this is not a database" * 100)
    with pytest.raises(DatabaseUnavailable, match=r"the audit log in .*audit\.db cannot be used"):
        open_sqlite(not_a_db, "the audit log", "CREATE TABLE IF NOT EXISTS t (a)")
