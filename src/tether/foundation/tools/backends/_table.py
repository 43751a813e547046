"""The tool_call_results table as both SQL backends lay it out.

Primary key (run_id, step_id, attempt); a partial unique index on (run_id, step_id) over the
rows that are not `failed` makes the intent insert itself the guard against a second live
call, and one on `approval` over the same rows keeps an approval on one call (another, over
every row that has one, finds the call an approval released). No foreign key:
run and step ids and the approval's request id are plain text.

`approval` came after the table first shipped: `ADD_APPROVAL` adds it to a table that lacks it
(I1 migration 1), before the index on it is made.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from tether.foundation.tools.results import ToolCallRecord

COLUMNS = (
    "run_id", "step_id", "attempt", "tool", "args", "args_hash", "idempotency_key", "status",
    "started_at", "finished_at", "result", "result_ref", "error_type", "error", "interrupted",
    "resolution", "approval",
)  # fmt: skip
SELECT = f"SELECT {', '.join(COLUMNS)} FROM tool_call_results"


def schema(real: str, boolean: str) -> str:
    """The DDL with the dialect's float and boolean types."""
    return f"""
CREATE TABLE IF NOT EXISTS tool_call_results (
    run_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    tool TEXT NOT NULL,
    args TEXT NOT NULL,
    args_hash TEXT NOT NULL,
    idempotency_key TEXT,
    status TEXT NOT NULL,
    started_at {real} NOT NULL,
    finished_at {real},
    result TEXT,
    result_ref TEXT,
    error_type TEXT,
    error TEXT,
    interrupted {boolean} NOT NULL DEFAULT FALSE,
    resolution TEXT,
    approval TEXT,
    PRIMARY KEY (run_id, step_id, attempt)
);
CREATE UNIQUE INDEX IF NOT EXISTS tool_call_results_live
    ON tool_call_results (run_id, step_id) WHERE status <> 'failed';
"""


ADD_APPROVAL = "ALTER TABLE tool_call_results ADD COLUMN approval TEXT"
APPROVAL_INDEX = """
CREATE UNIQUE INDEX IF NOT EXISTS tool_call_results_approval_live
    ON tool_call_results (approval) WHERE approval IS NOT NULL AND status <> 'failed';
CREATE INDEX IF NOT EXISTS tool_call_results_approval
    ON tool_call_results (approval) WHERE approval IS NOT NULL;
"""


def values(record: ToolCallRecord) -> tuple[Any, ...]:
    """The record as a row, in COLUMNS order."""
    data = record.model_dump(mode="json")
    data["args"] = json.dumps(record.args, sort_keys=True)
    data["interrupted"] = record.interrupted
    return tuple(data[c] for c in COLUMNS)


def record(row: Sequence[Any]) -> ToolCallRecord:
    data = dict(zip(COLUMNS, row, strict=True))
    data["args"] = json.loads(data["args"])
    data["interrupted"] = bool(data["interrupted"])
    return ToolCallRecord.model_validate(data)
