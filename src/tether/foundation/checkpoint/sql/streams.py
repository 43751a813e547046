"""Run streams in SQL, once for both databases: a value appended to a run's named stream is
one `streams` row and one journal entry, written in one transaction under the run's lease, so a
replay finds the entry and never appends the value twice. Offsets count from 0 per (run, key);
the run's row is locked (PostgreSQL) or the writer lock held (SQLite) while the next one is
taken, so they have no gaps. Readers follow through `wait_for_work`: an append notifies as a
woken run does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TypeVar

from tether.foundation.checkpoint.contract import (
    RESTART_PREFIX,
    TERMINAL,
    JournalEntry,
    StreamItem,
    StreamPage,
    restart_marker,
)
from tether.foundation.checkpoint.sql.checkpointer import SqlCheckpointer
from tether.foundation.checkpoint.sql.dialect import Connection, Database
from tether.foundation.checkpoint.sql.rows import entry_row

D = TypeVar("D", bound=Database)


class StreamStatements:
    """The stream statements in one dialect's placeholder."""

    def __init__(self, placeholder: str, now: str) -> None:
        def q(text: str) -> str:
            return text.replace("?", placeholder)

        self.next_offset = q(
            "SELECT COALESCE(MAX(seq), -1) + 1 AS next FROM streams WHERE run_id = ? AND key = ?"
        )
        self.insert = q(
            "INSERT INTO streams (run_id, key, seq, value, attempt, written_at) "
            f"VALUES (?, ?, ?, ?, ?, {now})"
        )
        self.read = q(
            "SELECT run_id, key, seq, value, attempt, written_at FROM streams "
            "WHERE run_id = ? AND key = ? AND seq >= ? ORDER BY seq LIMIT ?"
        )
        self.status = q("SELECT status FROM runs WHERE id = ?")
        self.insert_token = q(
            "INSERT INTO streams (run_id, key, seq, value, attempt, written_at, step_id) "
            f"VALUES (?, ?, ?, ?, ?, {now}, ?)"
        )
        self.unmarked = q(
            "SELECT MIN(seq) AS begun, MAX(seq) AS last FROM streams WHERE run_id = ? AND key = ? "
            "AND step_id = ? AND seq > (SELECT COALESCE(MAX(seq), -1) FROM streams "
            "WHERE run_id = ? AND key = ? AND step_id = ? AND value LIKE ?)"
        )


class SqlStreams(SqlCheckpointer[D]):
    """`append_stream` and `read_stream` over the shared control flow's lease check."""

    _streams: StreamStatements

    def append_stream(
        self, run_id: str, token: str, key: str, value: str, entry: JournalEntry
    ) -> int:
        def append(c: Connection) -> int:
            run, _ = self._check_lease(c, run_id, token)
            offset = int(c.execute(self._streams.next_offset, (run_id, key)).fetchone()["next"])
            c.execute(self._streams.insert, (run_id, key, offset, value, run.claims))
            c.execute(self._sql.insert_entry, entry_row(replace(entry, value=str(offset))))
            self._notify(c)
            return offset

        return self._db.tx(append)

    def append_tokens(
        self, run_id: str, token: str, key: str, step_id: str, values: Sequence[str], first: bool
    ) -> None:
        s = self._streams

        def append(c: Connection) -> None:
            run, _ = self._check_lease(c, run_id, token)
            offset = int(c.execute(s.next_offset, (run_id, key)).fetchone()["next"])
            rows = list(values)
            if first:
                args = (run_id, key, step_id, run_id, key, step_id, f"{RESTART_PREFIX}%")
                left = c.execute(s.unmarked, args).fetchone()
                if left is not None and left["begun"] is not None:
                    rows.insert(0, restart_marker(int(left["begun"])))
            c.cursor().executemany(
                s.insert_token,
                [(run_id, key, offset + i, v, run.claims, step_id) for i, v in enumerate(rows)],
            )
            self._notify(c)

        self._db.tx(append)

    def read_stream(self, run_id: str, key: str, offset: int = 0, limit: int = 1000) -> StreamPage:
        # The status first: a run seen finished wrote its last value before this read.
        status = self._db.one(self._streams.status, (run_id,))
        if not status:
            self.get_run(run_id)  # RunNotFound
        closed = status[0]["status"] in TERMINAL
        rows = self._db.one(self._streams.read, (run_id, key, offset, limit))
        items = [
            StreamItem(
                run_id=r["run_id"],
                key=r["key"],
                offset=int(r["seq"]),
                value=r["value"],
                attempt=int(r["attempt"]),
                written_at=float(r["written_at"]),
            )
            for r in rows
        ]
        return StreamPage(items=items, closed=closed and len(items) < limit)
