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


class StartRun(_Body):
    workflow: str = Field(description="NAME (its highest version) or NAME@X.Y.Z")
    input: dict[str, Any] = Field(default_factory=dict)
    key: str | None = Field(default=None, description="Idempotency key: same key, same run")


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
