"""The `tool_call_results` contract: I1's own record of every tool call, owned by I1.

One row per (run, step id, attempt). The intent row (`started`, with the args hash) is
committed before the tool is dispatched, and at most one row per (run, step id) is live
(started or finished), so a second dispatch of the same call cannot begin behind the first's
back. On resume this row, not the journal, says whether the outside world may have seen the
call. It holds run and step ids as plain values: no foreign key into I2's tables, so I1's
database can live elsewhere.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

from pydantic import BaseModel, ConfigDict

from tether.errors import RunStateError

if TYPE_CHECKING:
    from tether.settings import Settings


log = logging.getLogger(__name__)


class CallStatus(StrEnum):
    STARTED = "started"  # intent committed; no result yet (running, or the worker died)
    FINISHED = "finished"
    FAILED = "failed"  # raised, hit a limit, or was interrupted and superseded by a re-run


class Resolution(StrEnum):
    """A person's decision on an interrupted call (`tether resolve`)."""

    RESULT = "result"  # the call happened; here is its result
    SKIP = "skip"  # treat the call as done, with no result (None)
    RERUN = "rerun"  # run it once more


class ToolCallRecord(BaseModel):
    """One row of tool_call_results. `result` is JSON text; over the inline limit it is in the
    blob store at `result_ref` instead."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    step_id: str
    attempt: int
    tool: str
    args: dict[str, Any]
    args_hash: str
    idempotency_key: str | None
    status: CallStatus
    started_at: float
    finished_at: float | None = None
    result: str | None = None
    result_ref: str | None = None
    error_type: str | None = None
    error: str | None = None
    interrupted: bool = False
    resolution: Resolution | None = None
    # The I6 request whose decision released this call: its consumption, recorded with the
    # intent, so a crash can neither lose it nor let another call spend it.
    approval: str | None = None


@runtime_checkable
class ToolCallStore(Protocol):
    """Where tool_call_results live. Every method is one transaction, committed on return."""

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> Self:
        """How `tether.foundation.loader` builds it: from the settings (its database URL, the
        data directory) and the options of its table in tether.toml, where it has one."""
        ...

    def begin(
        self, intent: ToolCallRecord, *, trailing: bool = False
    ) -> tuple[ToolCallRecord, bool]:
        """Insert the intent row unless a live row exists for (run, step id).

        `trailing`: the row need not be on disk before dispatch (a `pure` or
        `idempotent_with_key` call, which a replay may re-run or re-send with its key), so its
        commit may wait for the next flushed one; an intent that spends an approval is flushed
        regardless. Without it (an `unsafe_on_replay` call) it is on disk when this returns.

        Returns (the row inserted, True), or (the live row that was there, False). The attempt
        stored is the intent's, or one past the last failed attempt if that is higher.

        An intent carrying an `approval` spends it: if a row of another (run, step id) holds
        that approval, nothing is inserted and ApprovalSpent names the call it released.
        """
        ...

    def finish(
        self, run_id: str, step_id: str, attempt: int, *, result: str | None,
        result_ref: str | None, finished_at: float,
    ) -> None:  # fmt: skip
        """Record the result of a started call. The commit may trail: the journal append that
        follows is the durable record, and a row left `started` is an interrupted call."""
        ...

    def fail(
        self, run_id: str, step_id: str, attempt: int, *, error_type: str, error: str,
        interrupted: bool, finished_at: float,
    ) -> bool:  # fmt: skip
        """Mark a started call failed; False if it was no longer started."""
        ...

    def lookup(self, run_id: str, step_id: str) -> ToolCallRecord | None:
        """The latest attempt at (run, step id), or None if the tool was never called there."""
        ...

    def resolve(
        self, run_id: str, step_id: str, resolution: Resolution, result: str | None,
        at: float,
    ) -> ToolCallRecord:  # fmt: skip
        """Apply a person's decision to the latest attempt; returns the row as it now is.

        RESULT and SKIP finish it (SKIP with the JSON `null`); RERUN fails it so the next call
        dispatches again. A call that has finished since keeps its row, unchanged.
        RunStateError if there is no call there.
        """
        ...

    def forget(self, run_ids: Sequence[str]) -> int:
        """Delete the rows of these (pruned) runs; returns how many."""
        ...

    def copy_calls(self, from_run: str, to_run: str, step_ids: Sequence[str]) -> int:
        """Copy every attempt's row of these steps of `from_run` to `to_run`, in one
        transaction (a fork keeps the calls made before the step it starts from); returns how
        many rows. The copies keep their keys and results: they record what was sent."""
        ...

    def blob_refs(self) -> set[str]:
        """Every blob address a stored result refers to."""
        ...

    def close(self) -> None: ...


def apply_resolution(
    record: ToolCallRecord | None, run_id: str, step_id: str, resolution: Resolution,
    result: str | None, at: float,
) -> ToolCallRecord:  # fmt: skip
    """The row after a person's decision; every backend stores exactly this."""
    if record is None:
        raise RunStateError(f"run {run_id} has no tool call at step {step_id}; nothing to resolve")
    if record.status is CallStatus.FINISHED:
        # Finished since it was interrupted: the execution thought dead (its lease had lapsed)
        # finished it after the run was parked, or an earlier resolve stopped before resuming
        # the run. Refusing would leave the run parked for good; `rerun` would send it twice.
        log.warning("the tool call at step %s of run %s has finished since it was interrupted; "
                    "its recorded result stands and '%s' was not applied", step_id, run_id,
                    resolution.value)  # fmt: skip
        return record
    if resolution is Resolution.RESULT and result is None:
        raise RunStateError("resolve with a result needs the result (JSON text)")
    if resolution is Resolution.RERUN:
        return record.model_copy(update={
            "status": CallStatus.FAILED, "finished_at": at, "interrupted": True,
            "error_type": "Resolved", "error": "a person chose to run the call again",
            "resolution": resolution,
        })  # fmt: skip
    return record.model_copy(update={
        "status": CallStatus.FINISHED, "finished_at": at, "result_ref": None,
        "result": result if resolution is Resolution.RESULT else "null", "resolution": resolution,
    })  # fmt: skip
