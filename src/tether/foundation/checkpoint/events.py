"""Event matching and the journal entries every backend writes the same way.

Kept apart from any backend so memory, SQLite and PostgreSQL decide "does this event satisfy
this wait" and "what does a delivered event / timer / child result look like in the journal"
identically.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from tether.foundation.checkpoint.contract import (
    EntryKind,
    EntryStatus,
    JournalEntry,
    RunRecord,
    RunStatus,
    Wait,
    WaitKind,
)

BUDGET_EVENT = "tether.budget.raised"  # sent by `tether budget raise`; data: {"run_id": ...}


def parked_status(waits: Sequence[Wait]) -> RunStatus:
    """What a parked run is doing: sleeping (timers only), paused (waiting only for a person
    to raise its budget) or waiting (events, children)."""
    if all(w.kind is WaitKind.TIMER for w in waits):
        return RunStatus.SLEEPING
    if all(w.kind is WaitKind.EVENT and w.event == BUDGET_EVENT for w in waits):
        return RunStatus.PAUSED
    return RunStatus.WAITING


def matches(match: dict[str, Any], data: Any) -> bool:
    """An event satisfies a wait when every `match` field equals the event's field."""
    if not match:
        return True
    if not isinstance(data, dict):
        return False
    return all(k in data and data[k] == v for k, v in match.items())


def event_entry(
    run_id: str, wait_step: str, wait_name: str, event_id: int, data: str, now: float
) -> JournalEntry:
    return JournalEntry(
        run_id=run_id,
        step_id=wait_step,
        kind=EntryKind.EVENT,
        name=wait_name,
        value=data,
        ref=str(event_id),
        started_at=now,
        finished_at=now,
    )


def deadline_entry(run_id: str, wait: Wait, now: float) -> JournalEntry:
    """A due timer: a sleep that is over, or an event wait that timed out (value null)."""
    kind = EntryKind.SLEEP if wait.kind is WaitKind.TIMER else EntryKind.EVENT
    return JournalEntry(
        run_id=run_id,
        step_id=wait.step_id,
        kind=kind,
        name=wait.name,
        value="null",
        started_at=now,
        finished_at=now,
    )


def child_entry(child: RunRecord, step_name: str, now: float) -> JournalEntry:
    """The parent's journal entry for a finished child: its output, or why it did not finish."""
    if child.status is RunStatus.COMPLETED:
        status, value, error = EntryStatus.OK, child.output, None
    else:
        status, value = EntryStatus.ERROR, None
        reason = "cancelled" if child.status is RunStatus.CANCELLED else _error_message(child.error)
        error = json.dumps({"type": "ChildFailed", "message": reason})
    assert child.parent_id is not None and child.parent_step is not None
    return JournalEntry(
        run_id=child.parent_id,
        step_id=child.parent_step,
        kind=EntryKind.INVOKE,
        name=step_name,
        status=status,
        value=value,
        error=error,
        ref=child.id,
        started_at=child.created_at,
        finished_at=now,
    )


def _error_message(error: str | None) -> str:
    if not error:
        return "failed"
    try:
        data = json.loads(error)
    except ValueError:
        return error
    return f"{data.get('type', 'Error')}: {data.get('message', '')}"
