"""The bodies the HTTP API reads and writes, beyond the client's own records.

Runs, journals, schedules and costs go out as the models `Tether` returns (`RunRecord`,
`RunView`, `Schedule`, `CostTotal`), so the API and the Python client cannot drift; these add
only what a request carries and what a page of results wraps.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tether.foundation.checkpoint.contract import RunRecord
from tether.foundation.cost.contract import CostTotal


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DebounceStarts(_Body):
    key: str = Field(min_length=1, description="Starts with this key (per workflow) make one run")
    period: float = Field(gt=0, description="Seconds after the burst's last start it runs")


class ThrottleStarts(_Body):
    starts: int = Field(ge=1, description="At most this many runs start...")
    per: float = Field(gt=0, description="...in any this many seconds")
    key: str = Field(default="", description="Counted per key (per workflow); empty: all")


class StartRun(_Body):
    workflow: str = Field(description="NAME (its highest version) or NAME@X.Y.Z")
    input: dict[str, Any] = Field(default_factory=dict)
    key: str | None = Field(default=None, description="Idempotency key: same key, same run")
    queue: str | None = Field(default=None, description="A declared queue (else the workflow's)")
    concurrency_key: str | None = Field(
        default=None, description="The queue's per-key limit counts this (else the workflow's)"
    )
    priority: int = Field(default=0, description="Higher is claimed first within its queue")
    debounce: DebounceStarts | None = Field(
        default=None, description="A burst of starts makes one pending run; its id is returned"
    )
    throttle: ThrottleStarts | None = None


class Started(BaseModel):
    run_id: str


class RunPage(BaseModel):
    runs: list[RunRecord]
    costs: dict[str, CostTotal] = Field(description="Each listed run's model-call roll-up")
    stranded: list[str] = Field(description="Listed runs no live worker can resume")
    resumers: dict[str, list[str]] = Field(
        description="Each listed run's versions that workers recorded as able to resume it"
    )
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page")


class Resolve(_Body):
    step_id: str
    decision: Literal["result", "skip", "rerun"]
    result: Any = Field(default=None, description="The call's result, with decision=result")


class Decide(_Body):
    reason: str | None = Field(default=None, description="Why: kept with the decision")
    args: dict[str, Any] | None = Field(
        default=None, description="Edited arguments: approve these instead (approve only)"
    )


class Fork(_Body):
    from_step: str = Field(min_length=1, description="The step id, as the run's journal has it")
    version: str | None = Field(default=None, description="Run the fork on this version")
    cancel_original: bool = Field(
        default=False, description="Cancel the run first (needed if it has not finished)"
    )


class QueueView(BaseModel):
    """A queue's limits (None: that limit does not apply) and what it holds now."""

    name: str
    concurrency: int | None
    per_key: int | None
    starts: int | None
    per: float
    running: int = Field(description="Runs holding a lease")
    waiting: int = Field(description="Runs pending: waiting for a slot or a worker")
    oldest_wait_seconds: float | None = Field(description="How long the oldest pending waited")


class RaiseBudget(_Body):
    usd: float = Field(gt=0, description="Dollars added to the run's cost cap")


class SendEvent(_Body):
    name: str = Field(min_length=1)
    data: dict[str, Any] = Field(default_factory=dict)
    run: str | None = Field(default=None, description="Deliver to this run only")


class AddSchedule(_Body):
    name: str = Field(min_length=1)
    cron: str
    workflow: str
    input: dict[str, Any] = Field(default_factory=dict)
    catchup: Literal["skip", "once"] = "skip"


class WorkflowVersions(BaseModel):
    name: str
    versions: list[str] = Field(description="Registered versions, highest first")
    stranded: int = Field(description="Unfinished runs that no live worker can resume")


class WorkflowCost(BaseModel):
    workflow: str = Field(description="name@version")
    cost: CostTotal
