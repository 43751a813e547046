"""The replay gate: recorded runs re-executed against the code installed now, in memory.

Each run's journal is copied into a memory checkpointer and the run executed once by the
ordinary runtime, so every primitive the journal holds is answered from it and checked
against what the code now calls (NonDeterminismError names the step and both primitives).
Nothing is written to the recorded database. Work the journal does not hold stays undone: a
tool or model call past the journal's end stops the replay there (`_Frontier`), no lane or
backend is built, and a wait parks as it did. A run passes when the replay reaches the end of
its journal without a mismatch and, for a completed run, returns the output recorded; a run no
registered version can resume is reported as such.

The runs come from a live checkpointer (`LiveRuns`: before a deploy, the production database)
or from a recording exported with `tether export` (`Recording`: in CI, a committed fixture).
"""

from __future__ import annotations

import json
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tether.client import Tether
from tether.evals.candidate import eval_settings
from tether.foundation.blobs.contract import BlobStore
from tether.foundation.checkpoint.contract import JournalEntry, NewRun, RunRecord, RunStatus
from tether.foundation.hitl.contract import (
    ApprovalRequest,
    Approver,
    Decision,
    HITLBroker,
    RequestState,
    Verdict,
)
from tether.foundation.loader import open_backend
from tether.foundation.models.contract import ModelRequest, RoutedResponse, TokenSink
from tether.foundation.models.router import BeforeAttempt, ModelRouter
from tether.foundation.tools.contract import (
    Lane,
    LaneResult,
    PersistenceClass,
    ToolInvocation,
)
from tether.foundation.tools.memory import MemoryToolResults
from tether.foundation.tools.runner import ToolRunner
from tether.runtime.foundations import Foundations
from tether.settings import Settings

# Cancelled runs are left out: their journal stops anywhere, and a plain step past it would run.
REPLAYED: list[RunStatus] = [
    s for s in RunStatus if s not in (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.CANCELLED)
]


class _Frontier(Exception):
    """The replay reached a call its journal does not hold: the recording ends here."""


class _FrontierLanes:
    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> _FrontierLanes:
        return cls()

    def lane(self, persistence: PersistenceClass) -> Lane:
        return self

    async def run(self, invocation: ToolInvocation) -> LaneResult:
        raise _Frontier(f"tool {invocation.tool.name}")

    async def park(self, run_id: str) -> None:
        """Nothing runs."""

    async def end_run(self, run_id: str) -> None:
        """Nothing kept."""

    async def close(self) -> None:
        """Nothing started."""


class _FrontierRouter(ModelRouter):
    async def complete(
        self,
        request: ModelRequest,
        *,
        before_attempt: BeforeAttempt | None = None,
        tokens: TokenSink | None = None,
    ) -> RoutedResponse:
        raise _Frontier(f"model {request.task_class}")


class _FrontierBroker:
    """I6 in a replay: a request the journal holds was opened by a journaled step and is never
    asked for again, so anything that would open, expire or decide one is past the recording
    (an approval wait whose deadline has passed since it was recorded expires on replay: the
    recording ends there, as it does at a tool or model call)."""

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> _FrontierBroker:
        return cls()

    def create(self, request: ApprovalRequest) -> ApprovalRequest:
        raise _Frontier(f"approval {request.action.name}")

    def get(self, request_id: str) -> ApprovalRequest:
        raise _Frontier(f"approval {request_id}")

    def list(
        self, *, state: RequestState | None = None, run_id: str | None = None
    ) -> list[ApprovalRequest]:
        return []

    def decide(
        self,
        request_id: str,
        verdict: Verdict,
        by: Approver,
        *,
        reason: str | None = None,
        args: dict[str, Any] | None = None,
    ) -> Decision:
        raise _Frontier(f"approval {request_id}")

    def expire(self, request_id: str, round: int) -> ApprovalRequest:
        raise _Frontier(f"approval {request_id} expiring")

    def consume(self, request_id: str, run_id: str, step_id: str, args_hash: str) -> Decision:
        raise _Frontier(f"approval {request_id}")

    def close(self) -> None:
        """Nothing opened."""


class _ReplayFoundations(Foundations):
    @property
    def tools(self) -> ToolRunner:
        runner: ToolRunner = self._get(
            "tools", lambda: ToolRunner(MemoryToolResults(), _FrontierLanes(), self.blobs)
        )
        return runner

    @property
    def models(self) -> ModelRouter:
        router: ModelRouter = self._get(
            "models", lambda: _FrontierRouter.from_settings(self.settings)
        )
        return router

    @property
    def hitl(self) -> HITLBroker:
        broker: HITLBroker = self._get("hitl", _FrontierBroker)
        return broker


class Recorded(Protocol):
    """Where recorded runs are read from. `data_dir` holds the blobs their values refer to;
    None when every value is inline."""

    data_dir: Path | None

    def runs(self, last: int, workflow: str | None = None) -> list[RunRecord]:
        """The last `last` finished or parked runs (children included), newest first."""
        ...

    def journal(self, run_id: str) -> list[JournalEntry]: ...


class LiveRuns:
    """The runs of a live checkpointer, read and never written."""

    def __init__(self, source: Tether) -> None:
        self._source = source
        self.data_dir: Path | None = source.settings.data_path

    def runs(self, last: int, workflow: str | None = None) -> list[RunRecord]:
        return self._source.list(statuses=REPLAYED, workflow=workflow, limit=last)

    def journal(self, run_id: str) -> list[JournalEntry]:
        return self._source.journal(run_id)


@dataclass(frozen=True)
class Replayed:
    run: RunRecord
    problem: str | None  # None: the code now installed replays it faithfully

    @property
    def ok(self) -> bool:
        return self.problem is None


def _problem(original: RunRecord, replayed: RunRecord) -> str | None:
    """Why the replay differs from the recording, or None."""
    error = json.loads(replayed.error or "{}")
    kind = error.get("type")
    failed_anew = kind == "NonDeterminismError" or original.status is not RunStatus.FAILED
    if replayed.status is RunStatus.FAILED and kind != _Frontier.__name__ and failed_anew:
        return f"{kind}: {error.get('message', '')}"
    if original.status is RunStatus.COMPLETED:
        if replayed.status is not RunStatus.COMPLETED:
            return f"was completed; the replay stopped {replayed.status.value}"
        if json.loads(replayed.output or "null") != json.loads(original.output or "null"):
            return "returns another output than the one recorded"
    return None


def _blobs(settings: Settings) -> BlobStore:
    store: BlobStore = open_backend("blobs", settings.blobs, BlobStore, settings)
    return store


def replay_run(settings: Settings, recorded: Recorded, run: RunRecord) -> Replayed:
    """Re-execute one recorded run in memory against the code `settings` register."""
    journal = recorded.journal(run.id)
    with tempfile.TemporaryDirectory(prefix="tether-replay-") as tmp:
        replay = eval_settings(settings, {}, recorded.data_dir or Path(tmp))
        with Tether(replay, foundations=_ReplayFoundations(replay, _blobs(replay))) as t:
            if t.registry.for_run(run.workflow, run.version) is None:
                return Replayed(run, f"no registered version can resume {run.workflow_id}")
            cp = t.checkpointer
            cp.create_run(NewRun(id=run.id, workflow=run.workflow, version=run.version,
                                 input=run.input, meta=run.meta))  # fmt: skip
            [claim] = cp.claim("replay", t.registry.accepts(), 1, 60.0, run_id=run.id)
            cp.append(run.id, claim.token, journal)
            cp.release(run.id, claim.token)
            stop = threading.Event()
            replayed = t.run(run.id, stop=stop, on_wait=lambda _: stop.set())
    return Replayed(run, _problem(run, replayed))


def replay_runs(
    settings: Settings, recorded: Recorded, last: int, workflow: str | None = None
) -> list[Replayed]:
    """The last `last` recorded runs, newest first, each replayed."""
    return [replay_run(settings, recorded, r) for r in recorded.runs(last, workflow)]
