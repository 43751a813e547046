"""A shared commit's statements on PostgreSQL: one per run's append, each checking its lease
in itself and counting one row when it wrote, none when it did not, so a whole batch goes to
the server as one pipeline (BEGIN, the statements, COMMIT: one round trip) and still says,
append by append, which were fenced.

A completion is one `UPDATE ... RETURNING` whose entries are inserted from what it returned,
and it drops the run's waits in the same statement. It writes only a run without a parent: a
child's completion locks its parent's row first and wakes it (`_finish_in`), which needs
answers between statements, so a child's completion counts none here and commits on its own,
as does a fenced one (`complete` then says why).
"""

from __future__ import annotations

from typing import Any

from tether.foundation.checkpoint.backends.postgres.database import NOW
from tether.foundation.checkpoint.contract import Append
from tether.foundation.checkpoint.sql.rows import COLS, entry_row

_VALUES = ", ".join(["%s"] * 12)
_LEASED = "id = %s AND lease_token = %s AND NOT cancel_requested"
_STEP = f"INSERT INTO journal ({COLS}) SELECT {_VALUES} FROM runs WHERE {_LEASED} FOR KEY SHARE"
_HELD = f"SELECT id FROM runs WHERE {_LEASED} FOR KEY SHARE"
_FINISHED = (
    "UPDATE runs SET status = 'completed', output = %s, error = NULL, failed_step = NULL, "
    "wake_at = NULL, lease_token = NULL, lease_owner = NULL, lease_expires_at = NULL, "
    f"updated_at = {NOW} WHERE {_LEASED} AND parent_id IS NULL RETURNING id"
)
_DROP_WAITS = "w AS (DELETE FROM waits WHERE run_id IN (SELECT id FROM r))"


def statement(a: Append) -> tuple[str, tuple[Any, ...]]:
    """The append as one statement whose row count is 1 if it committed its rows, else 0."""
    if a.output is None and len(a.entries) == 1:  # a plain step, as `append` sends it
        return _STEP, (*entry_row(a.entries[0]), a.run_id, a.token)
    inserts = [
        f"e{n} AS (INSERT INTO journal ({COLS}) SELECT {_VALUES} FROM r)"
        for n in range(len(a.entries))
    ]
    rows = tuple(x for e in a.entries for x in entry_row(e))
    if a.output is None:
        ctes, args = [f"r AS ({_HELD})", *inserts], (a.run_id, a.token, *rows)
    else:
        ctes = [f"r AS ({_FINISHED})", *inserts, _DROP_WAITS]
        args = (a.output, a.run_id, a.token, *rows)
    return f"WITH {', '.join(ctes)} SELECT id FROM r", args
