"""The ToolRunner: the only way a tool runs, and where the replay rules live.

Every call writes its intent (`started`, with the args hash) and commits before dispatch; only
if that insert created the row does the tool run. If a row was already there, the call is a
replay: a finished row returns its stored result without calling the tool (every replay
class); a started row with no result means a worker died mid-call, so `pure` and
`idempotent_with_key` run again (with the same key, derived from run id + step id) and
`unsafe_on_replay` raises UnsafeReplayError with the evidence, for a person to `resolve`.
An unsafe call that raises fails its row and is never retried automatically; one stopped
from outside (timeout, limit, dead process) counts as interrupted. Results over the inline
limit go to the blob store, referred to by hash.

An approval-gated call carries the I6 request that released it, and its intent row records it:
that row is where the approval is spent. The same call replayed finds its row and uses it again;
another call bringing it is refused (ApprovalSpent) before anything runs. I6 may live in another
database, so it is told afterwards, by the runtime, and only mirrors what this row says.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from tether.errors import NonDeterminismError, RunStateError, ToolFailed, UnsafeReplayError
from tether.foundation.blobs.contract import BlobStore
from tether.foundation.secrets.redaction import REDACTOR, redact
from tether.foundation.tools.config import open_lanes, open_tool_results
from tether.foundation.tools.contract import (
    LaneBackend,
    LeaseBound,
    ReplayClass,
    ToolInvocation,
)
from tether.foundation.tools.results import CallStatus, Resolution, ToolCallRecord, ToolCallStore

log = logging.getLogger(__name__)


def idempotency_key(run_id: str, step_id: str) -> str:
    """The same key for every attempt of one call, so the outside system can deduplicate."""
    return "tether-" + hashlib.sha256(f"{run_id}\x00{step_id}".encode()).hexdigest()[:40]


def _redacted(args: dict[str, Any]) -> dict[str, Any]:
    """Arguments as stored for evidence: any I7 secret in them struck out (the tool itself
    gets the real ones)."""
    if not REDACTOR.active:
        return args
    redacted: dict[str, Any] = json.loads(redact(json.dumps(args)))
    return redacted


# Built once: `json.dumps` with an option builds an encoder on every call.
_SORTED_JSON = json.JSONEncoder(sort_keys=True)


def args_hash(args: dict[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(_SORTED_JSON.encode(args).encode()).hexdigest()


@dataclass(frozen=True)
class ToolOutcome:
    """A finished call. `value` is the result as JSON data (`json` its text; the tool's
    `decode_result(json)` gives the declared type); `replayed` means it came from the store
    and the tool was not called."""

    value: Any
    json: str
    replayed: bool
    attempt: int
    idempotency_key: str | None
    started_at: float
    finished_at: float
    result_ref: str | None = None
    status: CallStatus = CallStatus.FINISHED


class ToolRunner:
    def __init__(
        self, store: ToolCallStore, lanes: LaneBackend, blobs: BlobStore,
        inline_limit: int = 256 * 1024,
    ) -> None:  # fmt: skip
        self.store, self.lanes, self._blobs, self._inline_limit = store, lanes, blobs, inline_limit
        # Asked on every lease renewal: an isinstance against a runtime Protocol checks each
        # of its members, so it is asked once.
        self._lease_bound = lanes if isinstance(lanes, LeaseBound) else None

    @classmethod
    def from_settings(cls, settings: Any, blobs: BlobStore) -> ToolRunner:
        return cls(open_tool_results(settings), open_lanes(settings), blobs,
                   inline_limit=settings.blob_threshold)  # fmt: skip

    async def call(self, invocation: ToolInvocation) -> ToolOutcome:
        """Run the call once, or answer it from tool_call_results. Raises ToolArgumentError
        (nothing ran, no row), ApprovalSpent (its approval released another call; nothing ran,
        no row), ToolFailed (the call raised or hit a limit; a failed row) or
        UnsafeReplayError (an unsafe call may have reached the outside world)."""
        tool = invocation.tool
        args = tool.validate_args(invocation.args)
        if tool.replay is ReplayClass.UNSAFE_ON_REPLAY:
            self._refuse_failed_unsafe(invocation)
        intent = ToolCallRecord(
            run_id=invocation.run_id, step_id=invocation.step_id, attempt=invocation.attempt,
            tool=tool.name, args=_redacted(args), args_hash=args_hash(args),
            status=CallStatus.STARTED,
            started_at=time.time(),
            idempotency_key=idempotency_key(invocation.run_id, invocation.step_id)
            if tool.replay is ReplayClass.IDEMPOTENT_WITH_KEY else None,
            approval=invocation.approval,
        )  # fmt: skip
        trailing = tool.replay is not ReplayClass.UNSAFE_ON_REPLAY
        row, created = self.store.begin(intent, trailing=trailing)
        if not created:
            if row.args_hash != intent.args_hash or row.approval != intent.approval:
                raise NonDeterminismError(
                    invocation.step_id, f"tool {tool.name} with arguments {row.args}",
                    f"tool {tool.name} with other arguments ({intent.args_hash}) or approval "
                    f"({intent.approval})",
                )  # fmt: skip
            if row.status is CallStatus.FINISHED:
                return self._stored(row)
            row = self._take_over_interrupted(invocation, row, intent)
        call = dataclasses.replace(
            invocation, args=args, attempt=row.attempt, idempotency_key=row.idempotency_key
        )
        return await self._dispatch(call, row)

    def lookup(self, run_id: str, step_id: str) -> ToolCallRecord | None:
        """The latest attempt at (run, step id): the source of truth when the journal lacks it."""
        return self.store.lookup(run_id, step_id)

    def outcome(self, record: ToolCallRecord) -> ToolOutcome:
        """A finished record as the outcome a call would have returned."""
        if record.status is not CallStatus.FINISHED:
            raise RunStateError(f"the tool call at step {record.step_id} has not finished")
        return self._stored(record)

    def resolve(
        self, run_id: str, step_id: str, resolution: Resolution | str, result: Any = None
    ) -> ToolCallRecord:
        """A person's decision on an interrupted call: its `result` (JSON data), `skip` (done,
        result None) or `rerun` (the next call dispatches it once more). A call that has
        finished since keeps its record (`apply_resolution` says why)."""
        decision = Resolution(resolution)
        text = json.dumps(result) if decision is Resolution.RESULT else None
        return self.store.resolve(run_id, step_id, decision, text, time.time())

    async def run_parked(self, run_id: str) -> None:
        """A parked run holds no process: stop its session processes (their state is on disk)."""
        await self.lanes.park(run_id)

    async def run_ended(self, run_id: str) -> None:
        await self.lanes.end_run(run_id)

    def lease_renewed(self, run_id: str, until: float) -> None:
        """The run is held until `until` (time.monotonic()): its tool processes stop then
        unless renewed, on lanes that can bound them (`LeaseBound`). Any thread."""
        if self._lease_bound is not None:
            self._lease_bound.renew(run_id, until)

    def lease_lost(self, run_id: str) -> None:
        """Another worker may hold the run now: stop its tool processes at once. Any thread."""
        if self._lease_bound is not None:
            self._lease_bound.lease_lost(run_id)

    async def close(self) -> None:
        await self.lanes.close()
        self.store.close()

    def _refuse_failed_unsafe(self, invocation: ToolInvocation) -> None:
        prior = self.store.lookup(invocation.run_id, invocation.step_id)
        if (prior is not None and prior.status is CallStatus.FAILED
                and prior.resolution is not Resolution.RERUN):  # fmt: skip
            raise ToolFailed(
                invocation.tool.name, prior.error_type or "Error",
                f"{prior.error} (an unsafe_on_replay call is not retried automatically)",
            )  # fmt: skip

    def _take_over_interrupted(
        self, invocation: ToolInvocation, row: ToolCallRecord, intent: ToolCallRecord
    ) -> ToolCallRecord:
        """A started row nobody finished: the worker that wrote it died during the call."""
        tool = invocation.tool
        if tool.replay is ReplayClass.UNSAFE_ON_REPLAY:
            raise UnsafeReplayError(
                tool.name, row.run_id, row.step_id, attempt=row.attempt, args=row.args,
                started_at=row.started_at, reason="was interrupted: its intent is recorded "
                "but no result",
            )  # fmt: skip
        log.info("re-running interrupted %s call %s/%s (attempt %d)", tool.replay, row.run_id,
                 row.step_id, row.attempt)  # fmt: skip
        self.store.fail(
            row.run_id, row.step_id, row.attempt, error_type="Interrupted", interrupted=True,
            error="the worker stopped during the call; run again", finished_at=time.time(),
        )  # fmt: skip
        row, created = self.store.begin(intent, trailing=True)  # not unsafe: raised above
        if not created:
            raise RunStateError(f"another worker took over the tool call at step {row.step_id}")
        return row

    async def _dispatch(self, call: ToolInvocation, row: ToolCallRecord) -> ToolOutcome:
        tool = call.tool
        result = await self.lanes.lane(tool.persistence).run(call)
        finished_at = time.time()
        if result.failure is not None:
            failure = result.failure
            if failure.interrupted and tool.replay is ReplayClass.UNSAFE_ON_REPLAY:
                # Stopped from outside: the row stays `started`, exactly like a crash.
                raise UnsafeReplayError(
                    tool.name, row.run_id, row.step_id, attempt=row.attempt, args=row.args,
                    started_at=row.started_at, reason=f"was interrupted: {failure.message}",
                )  # fmt: skip
            message = redact(failure.message)  # tools quote their arguments in errors
            self.store.fail(
                row.run_id, row.step_id, row.attempt, error_type=failure.type,
                error=message, interrupted=failure.interrupted, finished_at=finished_at,
            )  # fmt: skip
            raise ToolFailed(tool.name, failure.type, message, failure.limit)
        assert result.value is not None
        text, ref = result.value, None
        if len(text.encode()) > self._inline_limit:
            ref = self._blobs.put(text.encode())
        self.store.finish(
            row.run_id, row.step_id, row.attempt, result=None if ref else text, result_ref=ref,
            finished_at=finished_at,
        )  # fmt: skip
        return ToolOutcome(
            value=json.loads(text), json=text, replayed=False, attempt=row.attempt,
            idempotency_key=row.idempotency_key, started_at=row.started_at,
            finished_at=finished_at, result_ref=ref,
        )  # fmt: skip

    def _stored(self, row: ToolCallRecord) -> ToolOutcome:
        text = self._blobs.get(row.result_ref).decode() if row.result_ref else row.result
        assert text is not None and row.finished_at is not None  # a finished row has both
        return ToolOutcome(
            value=json.loads(text), json=text, replayed=True, attempt=row.attempt,
            idempotency_key=row.idempotency_key, started_at=row.started_at,
            finished_at=row.finished_at, result_ref=row.result_ref,
        )  # fmt: skip
