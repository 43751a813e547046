"""How a failure crosses Temporal between an activity and the workflow: tether's error becomes
a non-retryable ApplicationError (its type and details the error's fields), and the workflow
rebuilds the same error its code would meet on the local engine. A backoff that parks the run
crosses the same way, carrying the wait the workflow parks on.
"""

from __future__ import annotations

from temporalio.exceptions import ActivityError, ApplicationError

from tether.errors import StepFailed, ToolFailed
from tether.foundation.checkpoint.contract import Wait
from tether.runtime.execution import Execution, NeedsAttention, Suspend


class RunEnded(Exception):
    """I2 finished the run while it was parked (a cancel): the execution stops, writing
    nothing."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id} ended while parked")


def to_failure(e: BaseException, ex: Execution) -> ApplicationError:
    """tether's error as a non-retryable activity failure the workflow rebuilds; a backoff
    that parks the run (its failed attempt journaled) as the wait the workflow parks on."""
    if isinstance(e, Suspend):
        (wait,) = ex.waits
        data = wait.model_dump_json()
        return ApplicationError("backoff", data, type="Backoff", non_retryable=True)
    if isinstance(e, NeedsAttention):
        return ApplicationError(
            "needs attention", e.step_id, e.evidence, type="NeedsAttention", non_retryable=True
        )
    if isinstance(e, StepFailed):
        return ApplicationError(
            str(e), e.error_type, e.message, type="StepFailed", non_retryable=True
        )
    if isinstance(e, ToolFailed):
        details = (e.tool, e.error_type, e.message)
        return ApplicationError(str(e), *details, type="ToolFailed", non_retryable=True)
    return ApplicationError(str(e), type=type(e).__name__, non_retryable=True)


def rebuilt(e: ActivityError | ApplicationError, name: str, sid: str) -> BaseException:
    """The tether error an activity failed with, as the workflow's code would have met it on
    the local engine (a local activity's failure arrives as its ApplicationError itself)."""
    cause = e if isinstance(e, ApplicationError) else e.cause
    if not isinstance(cause, ApplicationError):
        failure: BaseException = StepFailed(name, type(cause or e).__name__, str(cause or e))
    else:
        details = list(cause.details)
        if cause.type == "NeedsAttention":
            return NeedsAttention(str(details[0]), str(details[1]))
        if cause.type == "StepFailed":
            failure = StepFailed(name, str(details[0]), str(details[1]))
        elif cause.type == "ToolFailed":
            failure = ToolFailed(str(details[0]), str(details[1]), str(details[2]))
        else:
            failure = StepFailed(name, cause.type or "Error", cause.message)
    failure.step_id = sid  # type: ignore[attr-defined]
    return failure


def backoff_wait(e: ActivityError | ApplicationError) -> Wait | None:
    """The timer a step's backoff parks the run on, when that is why its activity ended."""
    cause = e if isinstance(e, ApplicationError) else e.cause
    if not isinstance(cause, ApplicationError) or cause.type != "Backoff":
        return None
    return Wait.model_validate_json(str(next(iter(cause.details))))
