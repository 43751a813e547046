"""What the guard chain speaks: the call a guard judges, its verdict, and the call's outcome.

`GuardedCall` is the one input object every guard takes (a new field gets a default, so no
guard breaks), `GuardDecision` the verdict journaled with the call, `CallOutcome` what the call
did as far as budgets, rate limits and breakers care. `Guard` is the protocol I9's policy gate
and I10's limits guard implement. These types sit below both guards and the chain that runs
them (`chain.py`), so a guard never imports the chain.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tether.foundation.identity.contract import Identity

CallKind = Literal["tool", "model", "api"]  # api: a person's action over HTTP (I9 only)
Outcome = Literal["allow", "deny", "warn", "pause"]


# Built once: `json.dumps` with options builds an encoder per call, a third of its cost here.
CANONICAL_JSON = json.JSONEncoder(sort_keys=True, default=str)


def fingerprint(kind: str, target: str, arguments: Any) -> str:
    """The same call gives the same fingerprint however its arguments' keys are ordered."""
    canonical = CANONICAL_JSON.encode([kind, target, arguments])
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


class SubBudget(BaseModel):
    """A sub-budget an ancestor-or-self run of the call was given (`ctx.invoke(budget=)`):
    the calls of `run_id` and its descendants count against these caps as well."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    model_call_cap: int | None = None
    cost_cap_usd: float | None = None


class GuardedCall(BaseModel):
    """Everything a guard may judge a call by; new fields get defaults, so no guard breaks."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    workflow: str  # name@version
    step_id: str
    kind: CallKind
    target: str  # the tool's name, or the model call's task class
    arguments: dict[str, Any] = Field(default_factory=dict)  # tool args / model request summary
    sensitivity: str = "internal"
    backend: str | None = None  # the backend an attempt goes to: rate limits and breaker
    identity: Identity | None = None  # who started the run (I8)
    fingerprint: str = ""  # same call, same value; computed from kind, target, arguments if ""
    root_run_id: str = ""  # the run tree's root, whose budget every descendant spends; "" = run_id
    root_workflow: str = ""  # the root's name@version, whose configured budget applies
    attempt: int = 1  # a retry of a failed call is a new call; a re-execution after a crash isn't
    sub_budgets: tuple[SubBudget, ...] = ()  # outermost first
    approval: str | None = None  # the I6 request whose decision released this tool call

    @property
    def root(self) -> str:
        return self.root_run_id or self.run_id

    @model_validator(mode="after")
    def _fill_fingerprint(self) -> GuardedCall:
        if not self.fingerprint:
            object.__setattr__(
                self, "fingerprint", fingerprint(self.kind, self.target, self.arguments)
            )
        return self

    @property
    def workflow_name(self) -> str:
        return self.workflow.partition("@")[0]

    def on_backend(self, backend: str) -> GuardedCall:
        """This call as an attempt on `backend` (for the router's per-attempt hook)."""
        return self.model_copy(update={"backend": backend})


class GuardDecision(BaseModel):
    """One guard's verdict on one call, journaled with the call and shown by `inspect`."""

    model_config = ConfigDict(frozen=True)

    guard: str  # policy | budget | loop | rate | breaker
    rule: str  # the policy rule's name, or the limit that decided
    outcome: Outcome
    reason: str


class CallOutcome(BaseModel):
    """What a call did, as far as the guards care: success, tokens spent and what it cost."""

    model_config = ConfigDict(frozen=True)

    ok: bool
    tokens: int = 0
    cost_usd: float = 0.0
    error: str | None = None


class Guard(Protocol):
    """One link of the chain. `before` raises the guard's GuardError (its refusing decision in
    `error.decisions`) or returns its decisions; `after` returns decisions worth recording."""

    def before(self, call: GuardedCall) -> list[GuardDecision]: ...

    def before_backend(self, call: GuardedCall) -> list[GuardDecision]: ...

    def after(self, call: GuardedCall, outcome: CallOutcome) -> list[GuardDecision]: ...
