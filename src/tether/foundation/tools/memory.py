"""tool_call_results in memory: the test double beside the contract, and the store of a
process that needs no durability (a notebook, a unit test)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from tether.errors import ApprovalSpent
from tether.foundation.tools.results import (
    CallStatus,
    Resolution,
    ToolCallRecord,
    apply_resolution,
)


class MemoryToolResults:
    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], list[ToolCallRecord]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> MemoryToolResults:
        return cls(**options)

    def begin(
        self, intent: ToolCallRecord, *, trailing: bool = False
    ) -> tuple[ToolCallRecord, bool]:
        call = (intent.run_id, intent.step_id)
        with self._lock:
            rows = self._rows.get(call, [])
            if rows and rows[-1].status is not CallStatus.FAILED:
                return rows[-1], False
            if intent.approval is not None:
                self._refuse_spent(call, intent.approval)
            self._rows[call] = rows
            attempt = max(intent.attempt, rows[-1].attempt + 1) if rows else intent.attempt
            row = intent.model_copy(update={"attempt": attempt})
            rows.append(row)
            return row, True

    def _refuse_spent(self, call: tuple[str, str], approval: str) -> None:
        for other, held in self._rows.items():
            if other != call and any(r.approval == approval for r in held):
                raise ApprovalSpent(approval, "/".join(other))

    def finish(
        self, run_id: str, step_id: str, attempt: int, *, result: str | None,
        result_ref: str | None, finished_at: float,
    ) -> None:  # fmt: skip
        self._update(run_id, step_id, attempt, {
            "status": CallStatus.FINISHED, "result": result, "result_ref": result_ref,
            "finished_at": finished_at,
        })  # fmt: skip

    def fail(
        self, run_id: str, step_id: str, attempt: int, *, error_type: str, error: str,
        interrupted: bool, finished_at: float,
    ) -> bool:  # fmt: skip
        return self._update(run_id, step_id, attempt, {
            "status": CallStatus.FAILED, "error_type": error_type, "error": error,
            "interrupted": interrupted, "finished_at": finished_at,
        })  # fmt: skip

    def lookup(self, run_id: str, step_id: str) -> ToolCallRecord | None:
        with self._lock:
            rows = self._rows.get((run_id, step_id))
            return rows[-1] if rows else None

    def resolve(
        self, run_id: str, step_id: str, resolution: Resolution, result: str | None,
        at: float,
    ) -> ToolCallRecord:  # fmt: skip
        with self._lock:
            rows = self._rows.get((run_id, step_id), [])
            last = rows[-1] if rows else None
            rows[-1] = apply_resolution(last, run_id, step_id, resolution, result, at)
            return rows[-1]

    def forget(self, run_ids: Sequence[str]) -> int:
        gone = set(run_ids)
        with self._lock:
            keys = [k for k in self._rows if k[0] in gone]
            return sum(len(self._rows.pop(k)) for k in keys)

    def copy_calls(self, from_run: str, to_run: str, step_ids: Sequence[str]) -> int:
        with self._lock:
            copied = 0
            for step_id in step_ids:
                rows = [
                    r.model_copy(update={"run_id": to_run})
                    for r in self._rows.get((from_run, step_id), [])
                ]
                if rows:
                    self._rows[(to_run, step_id)] = rows
                    copied += len(rows)
            return copied

    def blob_refs(self) -> set[str]:
        with self._lock:
            return {r.result_ref for rows in self._rows.values() for r in rows if r.result_ref}

    def close(self) -> None:
        pass

    def _update(self, run_id: str, step_id: str, attempt: int, changes: dict[str, Any]) -> bool:
        with self._lock:
            rows = self._rows.get((run_id, step_id), [])
            for i, row in enumerate(rows):
                if row.attempt == attempt and row.status is CallStatus.STARTED:
                    rows[i] = row.model_copy(update=changes)
                    return True
            return False
