"""A finished run turned into a golden case: its input, its final output as the judge's
reference, and every tool result its journal holds (its children's too) as fixtures keyed by
tool name and argument hash, and what each of its waits received (an event's data, a person's
decision on an approval) as answers by wait name. Replaying the case then serves those: nothing
is sent again, and nobody has to answer a wait by hand."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from tether.client import Tether
from tether.errors import RunStateError
from tether.foundation.checkpoint.contract import EntryKind, EntryStatus
from tether.foundation.evals.contract import CaseAnswer, Fixture, GoldenCase
from tether.foundation.tools.registry import tools
from tether.runtime.registry import WorkflowDef


@dataclass(frozen=True)
class Captured:
    case: GoldenCase
    workflow: WorkflowDef


def _recorded(
    t: Tether, run_id: str, found: dict[tuple[str, str], Fixture], answers: list[CaseAnswer]
) -> None:
    for entry in t.journal(run_id):
        if entry.status is not EntryStatus.OK:
            continue
        if entry.kind is EntryKind.EVENT and entry.ref is not None:  # consumed, not timed out
            data = json.loads(t.codec.resolve(entry.value or "null"))
            answers.append(CaseAnswer(wait=entry.name, data=data))
        if entry.kind is not EntryKind.TOOL:
            continue
        raw = json.loads(t.codec.resolve(entry.input or "{}"))
        args = tools.get(entry.name).validate_args(raw.get("args", {}))
        result = json.loads(t.codec.resolve(entry.value or "null"))
        fixture = Fixture(tool=entry.name, args=args, result=result)
        found.setdefault(fixture.key, fixture)
    for child in t.inspect(run_id).children:
        _recorded(t, child.id, found, answers)


def capture(
    t: Tether, run_id: str, tags: Sequence[str] = (), case_id: str | None = None
) -> Captured:
    run = t.status(run_id)
    if run.status.value != "completed":
        raise RunStateError(
            f"run {run_id} is {run.status.value}; only a completed run can become a golden case"
        )
    wf = t.registry.for_run(run.workflow, run.version)
    if wf is None:
        raise RunStateError(f"run {run_id} is of {run.workflow_id}, which is not registered here")
    found: dict[tuple[str, str], Fixture] = {}
    answers: list[CaseAnswer] = []
    _recorded(t, run_id, found, answers)
    case = GoldenCase(
        id=case_id or f"run-{run_id}",
        input=json.loads(t.codec.resolve(run.input)),
        reference=t.output(run),
        tags=tuple(tags),
        fixtures=tuple(found.values()),
        answers=tuple(answers),
    )
    return Captured(case, wf)
