"""The one Temporal workflow (`tether`) that runs every tether `@workflow`: it looks the
function up by the run's `name@version`, calls it with a `TemporalContext`, and records the
run's end in I2's runs index through an activity.

Unsandboxed: the workflow function is the user's own module, imported once by the worker as
`tether worker` imports it on the local engine, and the context does no I/O of its own (a
blob over the threshold is content addressed, so a replay reads what was written). A
workflow's failure is tether's (the run fails, with the error, as on the local engine); the
Temporal workflow itself completes, so Temporal never retries a failed workflow task forever.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

from temporalio import workflow

from tether.errors import StepFailed
from tether.foundation.engine.backends.temporal.context import BINDINGS, TemporalContext
from tether.foundation.engine.backends.temporal.failures import RunEnded
from tether.foundation.engine.backends.temporal.messages import (
    WAKE_SIGNAL,
    WORKFLOW_NAME,
    Claimed,
    Finish,
    RunArgs,
)
from tether.runtime.execution import NeedsAttention

FINISH_TIMEOUT = timedelta(minutes=5)


@workflow.defn(name=WORKFLOW_NAME, sandboxed=False)
class TetherWorkflow:
    def __init__(self) -> None:
        self.ctx: TemporalContext | None = None

    @workflow.signal(name=WAKE_SIGNAL)
    def wake(self) -> None:
        if self.ctx is not None:  # before the context exists nothing is parked yet
            self.ctx.wakes += 1

    @workflow.run
    async def run(self, args: RunArgs) -> dict[str, Any]:
        b = BINDINGS[workflow.info().task_queue]
        wf = b.registry.for_run(args.workflow, args.version)
        if wf is None:
            raise RuntimeError(f"{args.workflow}@{args.version} is not registered here")
        claimed = await workflow.execute_activity(
            "tether.claim", args, result_type=Claimed, start_to_close_timeout=FINISH_TIMEOUT
        )
        if claimed.token is None:  # cancelled before it began, or finished already
            return {"output": claimed.output, "error": claimed.error}
        codec = b.codec
        ctx = self.ctx = TemporalContext(args, wf, codec, b, claimed)
        end = Finish(run_id=args.run_id, token=None, status="completed")
        try:
            value = await wf.fn(ctx, codec.decode(args.input, wf.input_adapter))
            ctx.check_replay()
            end.output = codec.encode(value, wf.output_adapter)
        except asyncio.CancelledError:
            end.status, end.token = "cancelled", ctx.token
            await _finish(end)
            raise
        except RunEnded:
            return {"output": None, "error": "cancelled"}
        except NeedsAttention as e:
            end.status, end.failed_step, end.evidence = "needs_attention", e.step_id, e.evidence
        except Exception as e:
            # the local engine's shape (runtime/execution.py error_json)
            detail: dict[str, Any]
            if isinstance(e, StepFailed):
                detail = {"type": e.error_type, "message": e.message}
            else:
                detail = {"type": type(e).__name__, "message": str(e)}
            detail["step"] = getattr(e, "step_id", None)
            end.status, end.error = "failed", json.dumps(detail)
            end.failed_step = detail["step"]
        end.token, end.spent = ctx.token, ctx.spent
        await _finish(end)
        return {"output": end.output, "error": end.error}


async def _finish(end: Finish) -> None:
    await workflow.execute_activity("tether.finish", end, start_to_close_timeout=FINISH_TIMEOUT)
