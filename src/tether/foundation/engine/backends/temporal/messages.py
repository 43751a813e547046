"""What crosses Temporal's history between a tether workflow and its activities: small
records only. A value over the blob threshold travels as a blob reference made by tether's
codec (`Codec.encode`), never as itself, so the 2 MB payload limit is not met by a large
step result."""

from __future__ import annotations

from pydantic import BaseModel, Field

from tether.foundation.checkpoint.contract import Wait

WORKFLOW_NAME = "tether"
WAKE_SIGNAL = "tether.wake"  # I2 woke the run (an event, a child's end): look at its waits


class RunArgs(BaseModel):
    run_id: str
    workflow: str
    version: str
    input: str  # tether's encoding (JSON text or a blob reference)
    # continued as new: the lease the run holds, and ctx.now/uuid/random values by step id
    token: str | None = None
    recorded: dict[str, str] = Field(default_factory=dict)


class Claimed(BaseModel):
    """The run's I2 lease taken for this execution (`token`) and its journal (tether's
    encoding of a list of `Entry`, a blob reference when large); or, when the run was not
    runnable (cancelled, or already finished), no token and the run's end as I2 has it."""

    token: str | None = None
    journal: str = "[]"
    known: list[str] = Field(default_factory=list)  # every step id the journal has rows for
    status: str = ""
    output: str | None = None
    error: str | None = None


class Entry(BaseModel):
    """A journal entry an execution that resumes the run answers from without an activity."""

    step_id: str
    kind: str
    name: str
    status: str
    value: str | None = None
    error: str | None = None
    ref: str | None = None


class Retry(BaseModel):
    """tether's RetryPolicy as data; `non_retryable` by `module:qualname`."""

    max_attempts: int = 3
    initial_interval: float = 0.5
    backoff: float = 2.0
    max_interval: float = 30.0
    jitter: bool = True
    non_retryable: list[str] = Field(default_factory=list)
    park_after: float | None = None


class StepCall(BaseModel):
    run_id: str
    token: str
    step_id: str
    name: str
    fn: str = ""  # "module:qualname", resolved by the worker; "" for a local activity's call
    local: str = ""  # the key of a local activity's call in LOCAL_CALLS
    # tether's encoding of {"args": [...], "kwargs": {...}}: a blob reference when large
    arguments: str = '{"args": [], "kwargs": {}}'
    retry: Retry | None = None
    fresh: bool = False  # no entry at this step id was in I2's journal when the run was claimed
    # a wait completed since the run's last step: this step's execution emits its span, so it
    # reads the whole journal (otherwise only this step id's rows)
    waited: bool = False


class CallRequest(BaseModel):
    """A tool call (`tool` is its name, `arguments` its arguments) or a model call
    (`request` is the ModelRequest); both in tether's encoding, a blob reference when large,
    so a long conversation's messages never enter history."""

    run_id: str
    token: str
    step_id: str
    tool: str = ""
    arguments: str = "{}"
    retry: Retry | None = None
    request: str = ""
    stream: str = ""  # a model call's run stream for its tokens, as they arrive
    # the I6 decision (its JSON) that released this tool call: I1 spends it on the call's row
    approval: str = ""


class ApprovalCall(BaseModel):
    """One of `ctx.approval`'s journaled steps, run as on the local engine
    (runtime/approvals.py): `open` the request in I6 (`action` is the Action's JSON in
    tether's encoding, the rest its options), or `expire` its `round` once the timer fired
    first."""

    run_id: str
    token: str
    step_id: str
    op: str  # open | expire
    action: str = ""
    approvers: list[str] = Field(default_factory=list)
    expires_in: float | None = None
    on_expire: str = "reject"
    escalate_to: list[list[str]] = Field(default_factory=list)
    reason: str | None = None
    request_id: str = ""
    round: int = 0


class ChildCall(BaseModel):
    parent_id: str
    step_id: str
    name: str
    workflow: str
    version: str
    input: str


class StreamCall(BaseModel):
    """A value for one of the run's streams (`value` in tether's encoding)."""

    run_id: str
    token: str
    step_id: str
    key: str
    value: str


class StepDone(BaseModel):
    """A step's result and the name it was journaled under: a replay from history compares
    the name with the one the workflow's code calls now."""

    name: str
    value: str


class WaitCall(BaseModel):
    """Park the run in I2 on `wait` (taking the lease again first when `token` is None)."""

    run_id: str
    token: str | None
    wait: Wait


class Parked(BaseModel):
    """A wait's outcome: its completion as I2 journaled it (`kind` is set), or the run stays
    parked (`token` None) and the workflow waits for Temporal to wake it; `ended` when I2
    finished the run meanwhile (a cancel)."""

    token: str | None = None
    kind: str | None = None
    status: str = "ok"
    value: str | None = None
    error: str | None = None
    ended: bool = False


class Finish(BaseModel):
    run_id: str
    token: str | None  # None: parked when it ended (a cancel I2 has already recorded)
    status: str  # completed | failed | cancelled | needs_attention
    output: str | None = None
    error: str | None = None
    failed_step: str | None = None
    evidence: str | None = None  # needs_attention: what a person needs to decide
    # (decision JSON, call step id) of approvals the run's calls spent: I6 is told again
    spent: list[tuple[str, str]] = Field(default_factory=list)
