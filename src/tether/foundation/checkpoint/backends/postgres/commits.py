"""A shared commit on PostgreSQL as one autocommitted statement: one round trip, no BEGIN,
no COMMIT, no pipeline, and the same statement text for every batch (so it stays prepared).

The appends arrive as two JSON parameters (each run's lease and output, and the plain appends'
entries): psycopg's client CPU is per statement and per parameter (a cursor, its adapters,
the pipeline's polls), and a statement per append cost the worker's commit thread about
100 µs an append, most of what a worker holding 16 runs spent on a step. The statement locks
every run of the batch in run-id order, each under its own lease check (`held`), inserts the
plain appends' entries for the runs it holds, completes the held runs without a parent (their
lease checked again in the UPDATE itself, their entries inserted, their waits dropped), and
answers with the ids of the runs it wrote.

A child's completion locks its parent's row first and wakes it (`_finish_in`), which needs
answers between statements, so it is not written here and commits on its own after, as does a
fenced append (`complete` or `append` then says why). `completion` is a lone completion's one
statement, made by `complete` when a batch holds one append.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from tether.foundation.checkpoint.backends.postgres.database import NOW
from tether.foundation.checkpoint.contract import Append, JournalEntry
from tether.foundation.checkpoint.sql.rows import COLS, entry_row

_VALUES = ", ".join(["%s"] * 12)
_LEASED = "id = %s AND lease_token = %s AND NOT cancel_requested"
_FINISHED = (
    "UPDATE runs SET status = 'completed', output = %s, error = NULL, failed_step = NULL, "
    "wake_at = NULL, lease_token = NULL, lease_owner = NULL, lease_expires_at = NULL, "
    f"updated_at = {NOW} WHERE {_LEASED} AND parent_id IS NULL RETURNING id"
)
_DROP_WAITS = "w AS (DELETE FROM waits WHERE run_id IN (SELECT id FROM r))"
_KEYS = tuple(c.strip() for c in COLS.split(","))
_SHARED = (
    "WITH a AS (SELECT * FROM json_to_recordset(%s::json) AS a(id text, token text, output text)), "
    "held AS MATERIALIZED (SELECT r.id FROM runs r JOIN a ON r.id = a.id "
    "WHERE r.lease_token = a.token AND NOT r.cancel_requested ORDER BY r.id FOR KEY SHARE OF r), "
    "f AS (UPDATE runs SET status = 'completed', output = a.output, error = NULL, "
    "failed_step = NULL, wake_at = NULL, lease_token = NULL, lease_owner = NULL, "
    f"lease_expires_at = NULL, updated_at = {NOW} FROM a "
    "WHERE runs.id = a.id AND a.output IS NOT NULL AND runs.id IN (SELECT id FROM held) "
    "AND runs.lease_token = a.token AND NOT runs.cancel_requested AND runs.parent_id IS NULL "
    "RETURNING runs.id), "
    "w AS (DELETE FROM waits WHERE run_id IN (SELECT id FROM f)), "
    f"e AS (INSERT INTO journal ({COLS}) SELECT {', '.join(f'j.{c}' for c in _KEYS)} "
    "FROM json_populate_recordset(NULL::journal, %s::json) j JOIN a ON j.run_id = a.id "
    "WHERE (a.output IS NULL AND j.run_id IN (SELECT id FROM held)) "
    "OR j.run_id IN (SELECT id FROM f)) "
    "SELECT h.id FROM held h JOIN a ON a.id = h.id WHERE a.output IS NULL "
    "UNION ALL SELECT id FROM f"
)


def shared(appends: Sequence[Append]) -> tuple[str, tuple[Any, ...]]:
    """The batch as one statement answering with the ids of the runs whose appends it wrote."""
    leases = [{"id": a.run_id, "token": a.token, "output": a.output} for a in appends]
    entries = [dict(zip(_KEYS, entry_row(e), strict=True)) for a in appends for e in a.entries]
    return _SHARED, (json.dumps(leases), json.dumps(entries))


def completion(
    run_id: str, token: str, output: str, entries: Sequence[JournalEntry]
) -> tuple[str, tuple[Any, ...]]:
    """A lone completion as one statement whose row count is 1 if it completed the run (held
    and without a parent), else 0."""
    inserts = [
        f"e{n} AS (INSERT INTO journal ({COLS}) SELECT {_VALUES} FROM r)"
        for n in range(len(entries))
    ]
    rows = tuple(x for e in entries for x in entry_row(e))
    ctes = [f"r AS ({_FINISHED})", *inserts, _DROP_WAITS]
    return f"WITH {', '.join(ctes)} SELECT id FROM r", (output, run_id, token, *rows)
