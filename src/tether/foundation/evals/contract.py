"""I5 EvalGate contract: golden cases, the scored results of running them, and the overrides.

A golden case is a workflow input plus what a good answer looks like: exact output fields, a
rubric for the judge, or both; its tags name the cohorts it counts in. It carries the tool
results the workflow will ask for (fixtures, keyed by tool name and argument hash), so an eval
fires no side effect. Cases are files reviewed like code (`workflows/<name>/evals/*.yaml`).

A `CaseResult` is one judged case under a ref (a label such as a branch or a revision) with the
configuration that produced it: the code revision, the routes, and a hash of the messages each
task class was sent. The gate reads the last N of them per cohort. An `Override` is the audit
row of a person letting a failing candidate through.

Stores own their tables and refer to nothing in another interface's tables.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_COHORT = "default"  # the cohort of a case with no tags


def digest(value: Any) -> str:
    """A stable hash of JSON data (keys sorted): fixtures, prompts and judgments are keyed by it."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


ANY_ARGS = "*"


class Fixture(BaseModel):
    """One recorded tool result, served to the call with this tool name and these arguments.
    Without `args` it answers any call of the tool that no exact fixture answers: for a write
    whose result does not depend on what is written (a saved file's path, "sent"), so a
    candidate that writes other words is judged on them instead of failing on the fixture."""

    model_config = ConfigDict(frozen=True)

    tool: str
    args: dict[str, Any] | None = None
    result: Any

    @property
    def key(self) -> tuple[str, str]:
        return self.tool, ANY_ARGS if self.args is None else digest(self.args)


class CaseEvent(BaseModel):
    """An event the case delivers (a person's approval): sent right after the run starts and
    held for the wait that matches it."""

    model_config = ConfigDict(frozen=True)

    name: str
    data: dict[str, Any] = Field(default_factory=dict)


class CaseAnswer(BaseModel):
    """What a wait of the recorded run received (an event's data, or a person's decision on
    an approval), served to the replay's wait of the same name: the n-th wait of a name gets
    the n-th answer of that name, whatever event it waits for, so no one sends it by hand."""

    model_config = ConfigDict(frozen=True)

    wait: str
    data: Any


class GoldenCase(BaseModel):
    """A workflow input and its expectations. `expect` maps output fields (dotted paths, list
    indexes as numbers) to the exact value wanted; `rubric` is what the judge grades against."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    input: dict[str, Any]
    expect: dict[str, Any] = Field(default_factory=dict)
    rubric: str | None = None
    reference: Any = None  # a captured run's output: the judge's reference when no rubric
    tags: tuple[str, ...] = ()
    fixtures: tuple[Fixture, ...] = ()
    events: tuple[CaseEvent, ...] = ()
    answers: tuple[CaseAnswer, ...] = ()

    @property
    def cohorts(self) -> tuple[str, ...]:
        return self.tags or (DEFAULT_COHORT,)


class EvalConfig(BaseModel):
    """What produced a result: the code, the routes of every task class the case called, and
    the hash of the messages each was sent (the prompt as the model saw it)."""

    model_config = ConfigDict(frozen=True)

    revision: str
    routes: dict[str, list[str]] = Field(default_factory=dict)  # task class -> backend/model
    prompts: dict[str, str] = Field(default_factory=dict)  # task class -> digest of messages


class CaseResult(BaseModel):
    """One judged case. `score` is in [0, 1]; a case that errored scores 0 and fails, with the
    error kept, so the gate counts it as a failure and never skips it."""

    model_config = ConfigDict(frozen=True)

    eval_run: str  # one `tether eval run`: the release exception narrows the window to one
    ref: str
    workflow: str  # the workflow's name (results of every version count)
    case_id: str
    cohorts: tuple[str, ...]
    score: float
    passed: bool
    metrics: dict[str, float] = Field(default_factory=dict)
    reason: str = ""
    error: str | None = None
    config: EvalConfig
    recorded_at: datetime | None = None  # set by the store


class Judgment(BaseModel):
    """The judge's verdict on one output, cached by digest of (case, output, rubric, judge)."""

    model_config = ConfigDict(frozen=True)

    score: float
    reason: str
    judge: str  # backend/model that judged


class Override(BaseModel):
    """A person let a candidate ref through a failing gate: who (an I8 subject), why, when, and
    the baseline it was compared with."""

    model_config = ConfigDict(frozen=True)

    baseline: str
    candidate: str
    subject: str
    reason: str
    at: datetime


@runtime_checkable
class EvalStore(Protocol):
    """Where I5 keeps results, cached judgments and overrides; each method is one short
    transaction."""

    def record(self, results: Sequence[CaseResult]) -> None:
        """Append the results of one eval run."""
        ...

    def window(
        self, workflow: str, ref: str, cohort: str | None, n: int, eval_run: str | None = None
    ) -> list[CaseResult]:
        """The last `n` results of the ref in the cohort (None: the whole golden set), of one
        eval run if given, newest first."""
        ...

    def latest_run(self, workflow: str, ref: str) -> str | None:
        """The id of the ref's most recent eval run, None if it has none."""
        ...

    def recent(self, n: int) -> list[CaseResult]:
        """The last `n` results of any workflow and ref, newest first: what `tether triggers`
        reads to compare the configurations that were evaluated lately (D10)."""
        ...

    def workflows(self, refs: Sequence[str]) -> list[str]:
        """Every workflow with a result under any of these refs, sorted."""
        ...

    def cohorts(self, workflow: str, refs: Sequence[str]) -> list[str]:
        """Every cohort any result of these refs counts in, sorted."""
        ...

    def judgment(self, key: str) -> Judgment | None: ...

    def put_judgment(self, key: str, judgment: Judgment) -> None: ...

    def add_override(self, override: Override) -> None: ...

    def overrides(self, candidate: str) -> list[Override]:
        """Overrides recorded for this candidate, oldest first."""
        ...

    def close(self) -> None: ...
