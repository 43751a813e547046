"""Where each span of a run sits in its trace, and when a wait or a gather began: derived from
the run record, the step ids and the journal alone, so any worker that resumes a run, after
any crash, derives the same ids, parents and times as the one that started it.

- A run tree is one trace: a child run (`ctx.invoke`) takes its root's trace id, and its run
  span hangs under the parent's invoke span (Phoenix and Langfuse draw one tree per trace id;
  a child as a trace of its own would be a separate entry, joined only by a link neither
  renders).
- Inside a gather, a primitive's span hangs under the gather's span: the gather of the branch
  it ran in (`3.0/` is branch 0 of gather `3`), which is in its step id (`3.0/2`) unless it
  was passed to the gather as it was (`ctx.gather(ctx.step(...))` takes the step's id first);
  elsewhere under the run span.
- A wait (sleep, event) is journaled by the checkpointer when it is delivered; its span runs
  from when the workflow reached it, which is when the primitive before it in its branch
  finished (the run's creation for a first primitive), to the delivery.
"""

from __future__ import annotations

from collections.abc import Mapping

from tether.foundation.checkpoint.contract import JournalEntry, RunRecord
from tether.foundation.trace.contract import span_id_for, trace_id_for


def run_trace(run: RunRecord) -> tuple[str, str, str | None]:
    """The run's trace id, its run span's id, and that span's parent (a child run's invoke
    span in its parent run, whose journal entry is always attempt 1)."""
    root = str(run.meta.get("root_id") or run.id)
    parent = None
    if run.parent_id and run.parent_step:
        parent = span_id_for(run.parent_id, run.parent_step, "1")
    return trace_id_for(root), span_id_for(run.id, "run"), parent


def gather_span_id(run_id: str, gather_id: str) -> str:
    return span_id_for(run_id, gather_id, "gather")


def enclosing_gather(step_id: str) -> str | None:
    """The id of the innermost gather whose branch called `step_id`, if any."""
    path, slash, _ = step_id.rpartition("/")
    return path.rpartition(".")[0] if slash else None


def parent_span(run_id: str, step_id: str, run_span: str) -> str:
    """The span above the primitive at `step_id`, or run in branch path `step_id`."""
    gather = enclosing_gather(step_id)
    return run_span if gather is None else gather_span_id(run_id, gather)


def _under(done: Mapping[str, JournalEntry], gather_id: str) -> list[JournalEntry]:
    """Every journaled primitive a gather's branches called, nested gathers' included."""
    prefix = f"{gather_id}."
    return [e for sid, e in done.items() if sid.startswith(prefix)]


def called_at(done: Mapping[str, JournalEntry], step_id: str, run_start: float) -> float:
    """When the workflow reached the primitive at `step_id`: the end of the one before it in
    its branch (a gather's end being its last branch entry's), else the start of its branch."""
    head = step_id.partition("~")[0]  # a backoff's or budget pause's wait: from its call
    path, slash, seq = head.rpartition("/")
    path += slash
    if not seq.isdigit():
        return run_start
    if int(seq) == 1:
        gather = enclosing_gather(head)
        return run_start if gather is None else called_at(done, gather, run_start)
    before = f"{path}{int(seq) - 1}"
    entry = done.get(before)
    if entry is not None:
        return entry.finished_at
    ends = [e.finished_at for e in _under(done, before)]
    return max(ends) if ends else called_at(done, before, run_start)
