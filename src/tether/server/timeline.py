"""A run's journal as the run-detail page draws it: one row per step, placed on a time axis.

Folding follows the CLI (`cli.views.steps`: one row per step id, its last entry, its attempts
counted), so the page and `tether inspect` agree on what a step is. Values longer than
`SHOWN_CHARS` are cut, and the page links to the full value.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from tether.cli.views import steps
from tether.client import RunView, Tether
from tether.errors import ConfigurationError
from tether.foundation.checkpoint.contract import TERMINAL, EntryKind, JournalEntry
from tether.foundation.cost.contract import CostRecord
from tether.foundation.tools.registry import tools

SHOWN_CHARS = 600


@dataclass
class Shown:
    text: str
    truncated: bool


@dataclass
class StepRow:
    entry: JournalEntry
    attempts: int
    left: float  # percent of the run's span where the step starts
    width: float  # percent of the run's span it lasted (at least a sliver, to be seen)
    input: Shown | None
    output: Shown | None
    error: Shown | None
    replay: str | None = None
    route: str | None = None
    cost: CostRecord | None = None
    guards: list[dict[str, Any]] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return max(0.0, self.entry.finished_at - self.entry.started_at)


def shown(text: str | None, limit: int = SHOWN_CHARS) -> Shown | None:
    if text is None:
        return None
    return Shown(text[:limit] + "…", True) if len(text) > limit else Shown(text, False)


def rows(t: Tether, view: RunView) -> list[StepRow]:
    run = view.run
    begin = run.created_at
    end = run.updated_at if run.status in TERMINAL else max(run.updated_at, time.time())
    span = max(end - begin, 1e-3)
    priced = {c.step_id: c for c in view.calls}
    out = []
    for entry, attempts in steps(view.journal):
        inputs = _json(t.codec.resolve(entry.input) if entry.input else None)
        left = min(100.0, max(0.0, (entry.started_at - begin) / span * 100))
        width = max(0.5, min(100.0 - left, (entry.finished_at - entry.started_at) / span * 100))
        out.append(
            StepRow(
                entry=entry,
                attempts=attempts,
                left=left,
                width=width,
                input=shown(entry.input and t.codec.resolve(entry.input)),
                output=shown(entry.value and t.codec.resolve(entry.value)),
                error=shown(entry.error),
                replay=_replay(entry),
                route=_route(t, entry),
                cost=priced.get(entry.step_id),
                guards=inputs.get("guards", []) if isinstance(inputs, dict) else [],
            )
        )
    return out


def full_value(t: Tether, run_id: str, step_id: str, part: str) -> str:
    """A step's whole input, output or error (the page shows them cut)."""
    entry = next((e for e, _ in reversed(steps(t.journal(run_id))) if e.step_id == step_id), None)
    if entry is None:
        return ""
    text = {"input": entry.input, "output": entry.value, "error": entry.error}.get(part)
    return t.codec.resolve(text) if text and part != "error" else text or ""


def _replay(entry: JournalEntry) -> str | None:
    if entry.kind is not EntryKind.TOOL:
        return None
    try:
        return tools.get(entry.name).replay.value
    except ConfigurationError:  # a tool this process never imported
        return None


def _route(t: Tether, entry: JournalEntry) -> str | None:
    if entry.kind is not EntryKind.MODEL or not entry.value:
        return None
    routed = _json(t.codec.resolve(entry.value))
    decision = routed.get("decision") if isinstance(routed, dict) else None
    if not isinstance(decision, dict):
        return None
    return f"{decision.get('backend')}/{decision.get('model')}"


def _json(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None
