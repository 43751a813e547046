"""Debounced and throttled starts in SQL, once for both databases: the run created (or the
pending run of its debounce key pushed back and given the new input) in one transaction,
under a lock per key (an advisory lock on PostgreSQL; SQLite's writer lock already is one)."""

from __future__ import annotations

import json
from typing import TypeVar

from tether.foundation.checkpoint.contract import NewRun, RunRecord
from tether.foundation.checkpoint.sql.checkpointer import SqlCheckpointer
from tether.foundation.checkpoint.sql.dialect import Connection, Database
from tether.foundation.checkpoint.sql.rows import to_run
from tether.foundation.checkpoint.starts import throttled_start

D = TypeVar("D", bound=Database)


class StartStatements:
    """The statements in one dialect's placeholder, clock and row lock."""

    def __init__(self, placeholder: str, now: str, for_update: str) -> None:
        def q(text: str) -> str:
            return text.replace("?", placeholder)

        self.clock = f"SELECT {now} AS now"
        self.by_key = q("SELECT * FROM runs WHERE key = ?")
        self.debounced = q(
            "SELECT id FROM runs WHERE debounce_key = ? AND status = 'pending' AND claims = 0"
            + for_update
        )
        self.push_back = q(
            "UPDATE runs SET input = ?, start_at = ?, updated_at = ? WHERE id = ? RETURNING *"
        )
        self.latest_starts = q(
            "SELECT start_at FROM runs WHERE throttle_key = ? ORDER BY start_at DESC LIMIT ?"
        )
        self.insert = q(
            "INSERT INTO runs (id, workflow, version, status, input, key, parent_id, parent_step, "
            "created_at, updated_at, event_horizon, meta, queue, queue_key, priority, start_at, "
            "debounce_key, throttle_key) VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, "
            "(SELECT COALESCE(MAX(id), 0) FROM events), ?, ?, ?, ?, ?, ?, ?) RETURNING *"
        )


class SqlStarts(SqlCheckpointer[D]):
    """`create_run` of a start with a debounce or a throttle, over the shared control flow."""

    _starts: StartStatements

    def _create_later(self, new: NewRun) -> tuple[RunRecord, bool]:
        s, debounce, throttle = self._starts, new.debounce, new.throttle

        def create(c: Connection) -> tuple[RunRecord, bool]:
            [clock] = c.execute(s.clock, ()).fetchall()
            now = float(clock["now"])
            if new.key is not None and (row := c.execute(s.by_key, (new.key,)).fetchone()):
                return to_run(row), False
            start_at = now
            if debounce is not None:
                self._lock_start_key(c, f"debounce:{debounce.key}")
                start_at = now + debounce.period
                pending = c.execute(s.debounced, (debounce.key,)).fetchone()
                if pending is not None:
                    [row] = c.execute(
                        s.push_back, (new.input, start_at, now, pending["id"])
                    ).fetchall()
                    return to_run(row), False
            if throttle is not None:
                self._lock_start_key(c, f"throttle:{throttle.key}")
                latest = c.execute(s.latest_starts, (throttle.key, throttle.starts)).fetchall()
                start_at = throttled_start(now, start_at, [r["start_at"] for r in latest], throttle)
            [row] = c.execute(
                s.insert,
                (new.id, new.workflow, new.version, new.input, new.key, new.parent_id,
                 new.parent_step, now, now, json.dumps(new.meta), new.queue, new.queue_key,
                 new.priority, start_at, debounce and debounce.key, throttle and throttle.key),
            ).fetchall()  # fmt: skip
            self._notify(c)
            return to_run(row), True

        return self._db.tx(create)

    def _lock_start_key(self, c: Connection, key: str) -> None:
        """Serialise the starts of one debounce or throttle key (SQLite's writer lock does)."""
