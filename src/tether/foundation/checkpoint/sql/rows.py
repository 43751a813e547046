"""How I2's rows map to the contract's records, the same on SQLite and PostgreSQL.

Columns are read by name, which both drivers' rows answer (`sqlite3.Row`, psycopg's
`dict_row`), so one mapping serves both and a row carrying extra columns (`db_now`,
`lease_token`) maps the same.
"""

from __future__ import annotations

import json
from typing import Any

from tether.foundation.checkpoint.contract import EntryKind, EntryStatus, JournalEntry, RunRecord

COLS = (
    "run_id, step_id, attempt, kind, name, status, value, error, input, ref, "
    "started_at, finished_at"
)


def entry_row(e: JournalEntry) -> tuple[Any, ...]:
    """A journal entry as the parameters of an insert listing COLS. The enums' `_value_`, not
    `.value`: on Python 3.11 `.value` is a property of `Enum`, ~0.2 µs each, twice a step."""
    return (
        e.run_id, e.step_id, e.attempt, e.kind._value_, e.name, e.status._value_, e.value,
        e.error, e.input, e.ref, e.started_at, e.finished_at,
    )  # fmt: skip


def to_entry(r: Any) -> JournalEntry:
    return JournalEntry(
        run_id=r["run_id"], step_id=r["step_id"], attempt=r["attempt"], kind=EntryKind(r["kind"]),
        name=r["name"], status=EntryStatus(r["status"]), value=r["value"], error=r["error"],
        input=r["input"], ref=r["ref"], started_at=r["started_at"], finished_at=r["finished_at"],
    )  # fmt: skip


def to_run(r: Any) -> RunRecord:
    return RunRecord(
        id=r["id"], workflow=r["workflow"], version=r["version"], status=r["status"],
        input=r["input"], output=r["output"], error=r["error"], failed_step=r["failed_step"],
        key=r["key"], parent_id=r["parent_id"], parent_step=r["parent_step"],
        created_at=r["created_at"], updated_at=r["updated_at"], wake_at=r["wake_at"],
        lease_owner=r["lease_owner"], lease_expires_at=r["lease_expires_at"],
        cancel_requested=bool(r["cancel_requested"]), claims=r["claims"],
        meta=json.loads(r["meta"]), queue=r["queue"], queue_key=r["queue_key"],
        priority=r["priority"], start_at=r["start_at"],
    )  # fmt: skip
