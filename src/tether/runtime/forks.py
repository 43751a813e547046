"""Forking a run from a step: a new run whose journal holds the old run's entries that finished
before that step, so it replays them and runs on from there (with new code, or after a tool was
fixed). The old run, its costs and its budget spend are untouched; the new run records where it
came from in `meta["forked_from"]`.

What "before" means: an entry finished no later than the step's first attempt started. A wait
completion, a child's result, a tool call's result all come along as the journal entries they
are, and I1's rows of those tool calls are copied to the new run (I1 is the calls' source of
truth); replay answers from them, so a tool call before the step is not made again (stream values
are written again, to the fork's own stream, from the replayed results). A tool call at
or after the step is a new call under the new run's id (a new key): `ForkPlan.calls_again`
names them, and the CLI asks before forking when one is `unsafe_on_replay`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tether.errors import InvalidInput, RunStateError
from tether.foundation.checkpoint.contract import (
    TERMINAL,
    EntryKind,
    JournalEntry,
    RunRecord,
)
from tether.foundation.tools.contract import ReplayClass
from tether.foundation.tools.registry import tools


@dataclass(frozen=True)
class ForkPlan:
    """What a fork of `run` from `step_id` keeps and what it will do again."""

    run: RunRecord
    step_id: str
    kept: list[JournalEntry]
    calls_again: list[str]  # tool names called at or after the step
    unsafe_again: list[str]  # of those, the unsafe_on_replay ones


def plan_fork(run: RunRecord, journal: list[JournalEntry], step_id: str) -> ForkPlan:
    """The fork's starting journal, or InvalidInput if the run never reached `step_id` (a
    step id that is not in the journal is a wrong argument, whatever the run's state)."""
    at = [e for e in journal if e.step_id == step_id]
    if not at:
        raise InvalidInput(
            "step to fork from",
            f"run {run.id} never reached step {step_id!r}; "
            f"`tether inspect {run.id}` lists the step ids it has",
        )
    cutoff = min(e.started_at for e in at)
    # A stream append is left out: the fork writes it again, to its own stream, on replay.
    kept = [
        e
        for e in journal
        if e.step_id != step_id and e.finished_at <= cutoff and e.kind is not EntryKind.STREAM
    ]
    kept_ids = {id(e) for e in kept}
    again = [e.name for e in journal if e.kind is EntryKind.TOOL and id(e) not in kept_ids]
    again = list(dict.fromkeys(again))
    unsafe = [n for n in again if _replay_class(n) is ReplayClass.UNSAFE_ON_REPLAY]
    return ForkPlan(run=run, step_id=step_id, kept=kept, calls_again=again, unsafe_again=unsafe)


def _replay_class(name: str) -> ReplayClass | None:
    try:
        return tools.get(name).replay
    except Exception:  # not registered in this process: nothing known about it
        return None


def check_forkable(run: RunRecord, cancel_original: bool) -> None:
    if run.status not in TERMINAL and not cancel_original:
        raise RunStateError(
            f"run {run.id} is {run.status.value}; fork it once it has finished, or cancel it "
            "with the fork (cancel_original; the CLI's --cancel-original)"
        )


def forked_entries(plan: ForkPlan, new_run_id: str) -> list[JournalEntry]:
    return [replace(e, run_id=new_run_id) for e in plan.kept]
