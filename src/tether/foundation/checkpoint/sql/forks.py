"""A forked run in SQL, once for both databases: a pending run created together with the
journal entries it starts from (copied from the run it was forked from), in one transaction,
so a worker never claims it with half its history."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TypeVar

from tether.foundation.checkpoint.contract import JournalEntry, NewRun, RunRecord
from tether.foundation.checkpoint.sql.checkpointer import SqlCheckpointer
from tether.foundation.checkpoint.sql.dialect import Connection, Database
from tether.foundation.checkpoint.sql.rows import entry_row, to_run

D = TypeVar("D", bound=Database)


class ForkStatements:
    """The fork's insert in one dialect's placeholder and clock."""

    def __init__(self, placeholder: str, now: str) -> None:
        self.insert_run = (
            "INSERT INTO runs (id, workflow, version, status, input, parent_id, parent_step, "
            "created_at, updated_at, event_horizon, meta, queue, queue_key, priority) "
            f"VALUES (?, ?, ?, 'pending', ?, ?, ?, {now}, {now}, "
            "(SELECT COALESCE(MAX(id), 0) FROM events), ?, ?, ?, ?) RETURNING *"
        ).replace("?", placeholder)


class SqlForks(SqlCheckpointer[D]):
    """`fork_run` over the shared control flow."""

    _forks: ForkStatements

    def fork_run(self, new: NewRun, entries: Sequence[JournalEntry]) -> RunRecord:
        def fork(c: Connection) -> RunRecord:
            [row] = c.execute(
                self._forks.insert_run,
                (new.id, new.workflow, new.version, new.input, new.parent_id, new.parent_step,
                 json.dumps(new.meta), new.queue, new.queue_key, new.priority),
            ).fetchall()  # fmt: skip
            if entries:
                c.cursor().executemany(self._sql.insert_entry, [entry_row(e) for e in entries])
            self._notify(c)
            return to_run(row)

        return self._db.tx(fork)
