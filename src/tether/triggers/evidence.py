"""What the decision triggers are computed from: the rows tether already keeps, read once.

Every number `tether triggers` prints comes from here, through the public client and the I5
store, never from a second bookkeeping path: the runs and journals of I2 (one span per run and
per journal entry, model calls with their route, tool calls), I6's approval requests, I5's
recent eval results, and the configuration in force. The window is by run creation time; a run
still open is measured up to now.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from tether.client import Tether
from tether.foundation.checkpoint.contract import (
    TERMINAL,
    EntryKind,
    EntryStatus,
    JournalEntry,
    RunRecord,
)
from tether.foundation.evals.contract import CaseResult, EvalStore
from tether.foundation.hitl.contract import ApprovalRequest

EVAL_RESULTS_READ = 5_000  # the newest I5 results compared for D10


@dataclass(frozen=True, slots=True)
class ModelCall:
    """One journaled model call: who answered it and at what sensitivity it was asked."""

    run_id: str
    backend: str
    model: str
    sensitivity: str


@dataclass(slots=True)
class Evidence:
    since: float
    until: float
    runs: list[RunRecord] = field(default_factory=list)
    journals: dict[str, list[JournalEntry]] = field(default_factory=dict)
    model_calls: list[ModelCall] = field(default_factory=list)
    approvals: list[ApprovalRequest] = field(default_factory=list)
    evals: list[CaseResult] = field(default_factory=list)
    workflow_of: dict[str, str] = field(default_factory=dict)  # run id -> workflow name

    @property
    def seconds(self) -> float:
        return max(self.until - self.since, 1.0)

    def duration(self, run: RunRecord) -> float:
        """How long the run has lived: to its last change when finished, else to now."""
        end = run.updated_at if run.status in TERMINAL else self.until
        return max(end - run.created_at, 0.0)

    def calls_per_run(self, kind: EntryKind) -> dict[str, int]:
        """Calls of `kind` each finished run made: one per step id, however many attempts."""
        return {
            run.id: len({e.step_id for e in self.journals.get(run.id, []) if e.kind is kind})
            for run in self.runs
            if run.status in TERMINAL
        }


def gather(t: Tether, evals: EvalStore, since: float, until: float | None = None) -> Evidence:
    found = Evidence(since=since, until=time.time() if until is None else until)
    found.runs = _runs_created_since(t, since)
    for run in found.runs:
        found.workflow_of[run.id] = run.workflow
        journal = t.journal(run.id)
        found.journals[run.id] = journal
        found.model_calls += [
            _model_call(t, run.id, e)
            for e in journal
            if e.kind is EntryKind.MODEL and e.status is EntryStatus.OK
        ]
    found.approvals = [
        a for a in t.approvals() if a.created_at is None or a.created_at.timestamp() >= since
    ]
    for a in found.approvals:
        if a.run_id not in found.workflow_of:
            found.workflow_of[a.run_id] = t.status(a.run_id).workflow
    found.evals = [
        r
        for r in evals.recent(EVAL_RESULTS_READ)
        if r.recorded_at is None or r.recorded_at.timestamp() >= since
    ]
    return found


def _runs_created_since(t: Tether, since: float) -> list[RunRecord]:
    """Every run created in the window: pages of the runs list, newest first, until a short
    page says the window is exhausted."""
    limit = 10_000
    while True:
        runs = t.list(limit=limit, created_after=since)
        if len(runs) < limit:
            return runs
        limit *= 4


def _model_call(t: Tether, run_id: str, entry: JournalEntry) -> ModelCall:
    routed: dict[str, Any] = json.loads(t.codec.resolve(entry.value or "{}"))
    decision = routed.get("decision", {})
    request = json.loads(t.codec.resolve(entry.input or "{}")).get("request", {})
    return ModelCall(
        run_id=run_id,
        backend=str(decision.get("backend", "")),
        model=str(decision.get("model", "")),
        sensitivity=str(request.get("sensitivity", "internal")),
    )
