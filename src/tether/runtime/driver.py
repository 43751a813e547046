"""The pass loop: drive one claimed run until it completes, fails, parks or is taken from us.

A pass calls the workflow function from the top. Primitives whose entry is in the journal
return from memory; the first one that is not runs and commits. A primitive that must wait
(a timer, an event, a child) registers a `Wait` and unwinds the function with `Suspend`; the
pass then parks the run. If the checkpointer can satisfy a wait at once (a due timer, a held
event, a finished child) the pass simply runs again, replaying from memory. Every other way
out of a pass (done, failed, cancelled, lease lost, shutdown, a person needed) ends here in
one checkpointer call.
"""

from __future__ import annotations

import json
import logging
import traceback

from tether.errors import DatabaseUnavailable, StepFailed, TetherError
from tether.foundation.checkpoint.contract import TERMINAL, LeaseLost, RunStatus
from tether.runtime.context import Context
from tether.runtime.execution import (
    Abandon,
    CancelRequested,
    Execution,
    NeedsAttention,
    Release,
    Suspend,
)
from tether.runtime.values import UnserialisableValue

log = logging.getLogger("tether.execution")


async def execute(ex: Execution) -> RunStatus:
    """Drive one claimed run until it completes, fails, parks, or is taken from us."""
    try:
        status = await _drive(ex)
    finally:
        ex.emit_spans()
        ex.sink.flush()
    await _settle_sessions(ex, status)
    return status


async def _settle_sessions(ex: Execution, status: RunStatus) -> None:
    """A run this process no longer executes holds no tool process here (a session's state is
    on disk), and a finished run leaves no session behind."""
    if not ex.has_foundations or ex.foundations.built("tools") is None:
        return  # no tool ran in this process: nothing to stop
    try:
        if status in TERMINAL:
            await ex.foundations.tools.run_ended(ex.run.id)
        else:
            await ex.foundations.tools.run_parked(ex.run.id)
    except Exception:  # the run's outcome is committed; a stuck process is only untidy
        log.warning("could not stop the tool sessions of run %s", ex.run.id, exc_info=True)


async def _drive(ex: Execution) -> RunStatus:
    cp, run = ex.cp, ex.run
    try:
        workflow_input = ex.codec.decode(run.input, ex.wf.input_adapter)
        while True:
            ex.waits, ex.seq = [], {}
            try:
                result = await ex.wf.fn(Context(ex), workflow_input)
            except Suspend:
                wrote = bool(ex.pending)
                resolved = cp.park(run.id, ex.token, ex.waits, ex.pending)
                ex.pending = []
                if wrote:
                    ex.committed()
                if not resolved:
                    return RunStatus.WAITING
                for entry in resolved:
                    ex.learn(entry)
                    ex.hold(entry)
                continue
            try:
                output = ex.codec.encode(result, ex.wf.output_adapter)
            except UnserialisableValue as e:
                raise StepFailed("(workflow output)", "UnserialisableValue", str(e)) from e
            cp.complete(run.id, ex.token, output, ex.pending)
            ex.run_span_emit(RunStatus.COMPLETED)
            return RunStatus.COMPLETED
    except (Abandon, LeaseLost):
        return RunStatus.PENDING
    except CancelRequested:
        try:
            cp.finish_cancel(run.id, ex.token)
        except LeaseLost:
            return RunStatus.PENDING
        ex.run_span_emit(RunStatus.CANCELLED)
        return RunStatus.CANCELLED
    except Release:
        cp.release(run.id, ex.token)
        return RunStatus.PENDING
    except DatabaseUnavailable as e:
        # Not the run's failure: the database stayed away longer than its reconnect window.
        # The lease lapses and a worker claims the run again once the database is back.
        log.warning("run %s left to its lease: %s", run.id, e)
        return RunStatus.PENDING
    except NeedsAttention as e:
        try:
            cp.needs_attention(run.id, ex.token, e.step_id, e.evidence)
        except LeaseLost:
            return RunStatus.PENDING
        return RunStatus.NEEDS_ATTENTION
    except Exception as e:
        error = ex.error_json(e)
        detail = json.loads(error)
        detail["step"] = getattr(e, "step_id", None)
        if not isinstance(e, TetherError):
            detail["traceback"] = traceback.format_exc(limit=8)
        try:
            cp.fail(run.id, ex.token, json.dumps(detail), detail["step"], ex.pending)
        except LeaseLost as lost:
            if lost.cancel_requested:
                cp.finish_cancel(run.id, ex.token)
                return RunStatus.CANCELLED
            return RunStatus.PENDING
        ex.run_span_emit(RunStatus.FAILED, detail["message"])
        return RunStatus.FAILED
