"""What crosses Temporal's history between a tether workflow and its activities: small
records only. A value over the blob threshold travels as a blob reference made by tether's
codec (`Codec.encode`), never as itself, so the 2 MB payload limit is not met by a large
step result."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

WORKFLOW_NAME = "tether"
EVENT_SIGNAL = "tether.event"


def task_queue(workflow: str, version: str) -> str:
    """Runs are routed by `name@version`: a worker polls the queues of the versions it runs."""
    return f"tether:{workflow}@{version}"


class RunArgs(BaseModel):
    run_id: str
    workflow: str
    version: str
    input: str  # tether's encoding (JSON text or a blob reference)
    token: str  # the I2 lease the engine holds for the run's whole life


class Retry(BaseModel):
    """tether's RetryPolicy as data; `non_retryable` by `module:qualname`."""

    max_attempts: int = 3
    initial_interval: float = 0.5
    backoff: float = 2.0
    max_interval: float = 30.0
    jitter: bool = True
    non_retryable: list[str] = Field(default_factory=list)


class StepCall(BaseModel):
    run_id: str
    token: str
    step_id: str
    name: str
    fn: str = ""  # "module:qualname", resolved by the worker; "" for a local activity's call
    local: str = ""  # the key of a local activity's call in LOCAL_CALLS
    args: list[Any] = Field(default_factory=list)
    keywords: dict[str, Any] = Field(default_factory=dict)
    retry: Retry | None = None


class CallRequest(BaseModel):
    """A tool call (`tool` is its name, `arguments` its arguments) or a model call
    (`request` is the ModelRequest as JSON)."""

    run_id: str
    token: str
    step_id: str
    tool: str = ""
    arguments: dict[str, Any] = Field(default_factory=dict)
    retry: Retry | None = None
    request: str = ""


class ChildCall(BaseModel):
    parent_id: str
    step_id: str
    name: str
    workflow: str
    version: str
    input: str


class ChildRun(BaseModel):
    run_id: str
    token: str


class Finish(BaseModel):
    run_id: str
    token: str
    status: str  # completed | failed | cancelled | needs_attention
    output: str | None = None
    error: str | None = None
    failed_step: str | None = None
    evidence: str | None = None  # needs_attention: what a person needs to decide


class Event(BaseModel):
    name: str
    data: dict[str, Any]
    held: bool = False  # sent to every run, not to this one: matches only a non-empty match
