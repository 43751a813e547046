"""I10 LimitsStore: the counters behind budgets, loop detection, rate limits and breakers.

The store speaks in intents, each one atomic, so workers sharing a store (Redis, or one SQLite
file) never lose an update between a read and a write:

- `admit` records that a run makes a call at `step_id`, unless the call cap or the loop limit
  refuses it. Its answer is kept per (run, step): a worker that crashed after the check but
  before the call's result was journaled re-executes the call, asks again, and gets the same
  answer with nothing counted twice.
- `add_cost` sets what the call at (run, step) cost, again idempotently, and returns the run's
  spend before and after, so a threshold is crossed exactly once.
- `take` is a token bucket; `breaker_allow` / `breaker_record` a circuit breaker. These count
  traffic, not runs: a re-executed call really reaches the provider again, so it counts.

Counters belong to a budget, not to one run: the guard passes the root run of a run tree (or a
child run given a sub-budget) as `run_id`, and the call's place in the tree (its own run, step
and attempt) as `step_id`, so every descendant spends from its root and a re-executed call is
still judged once.

Times are passed in (`now`, Unix seconds) by the guard, so one clock decides for every backend
and tests need no sleeping.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Protocol, Self, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

if TYPE_CHECKING:
    from tether.settings import Settings


Refusal = Literal["call_cap", "loop", "cost_cap"]
BreakerPhase = Literal["closed", "open", "half_open"]


class Admission(BaseModel):
    model_config = ConfigDict(frozen=True)

    refused: Refusal | None  # None: admitted
    calls: int  # counted calls of the run, this one included when admitted and counted
    streak: int  # identical calls in a row ending with this one
    replayed: bool = False  # this (run, step) was judged before; this is that answer
    spent_usd: float = 0.0  # the run's spend and raises as the call was judged, so the guard
    raised_usd: float = 0.0  # words its cost-cap decision without a read of its own


class Budget(BaseModel):
    """A child run's sub-budget: `ctx.invoke(agent, input, budget=Budget(model_call_cap=5))`.

    The child and its descendants spend from it *and* from every budget above it (their root's
    above all), so a sub-budget can only narrow what the tree may still spend, never widen it;
    one larger than its parent's is refused when the child is started. A field left None adds
    no cap of its own. Reaching a sub-budget's cap stops the child with BudgetExceeded (only the
    root's cost cap may pause, since `tether budget raise ROOT` is what wakes a tree)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_call_cap: PositiveInt | None = None
    cost_cap_usd: float | None = Field(default=None, gt=0, allow_inf_nan=False)


class RunBudget(BaseModel):
    model_config = ConfigDict(frozen=True)

    calls: int = 0
    spent_usd: float = 0.0
    raised_usd: float = 0.0  # added to the workflow's cost cap by people, for this run


class BreakerState(BaseModel):
    model_config = ConfigDict(frozen=True)

    phase: BreakerPhase
    failures: int  # consecutive
    allowed: bool = True  # for breaker_allow: may this call go through (a probe, if half-open)
    retry_after: float = 0.0  # seconds until a probe is allowed, when not allowed


@runtime_checkable
class LimitsStore(Protocol):
    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> Self:
        """How `tether.foundation.loader` builds it: from the settings (its database URL, the
        data directory) and the options of its table in tether.toml, where it has one."""
        ...

    def admit(
        self,
        run_id: str,
        step_id: str,
        fingerprint: str,
        *,
        counted: bool,
        call_cap: int,
        loop_after: int,
        cost_cap: float | None = None,
    ) -> Admission:
        """Admit the call unless the run has spent `cost_cap` (plus what people raised it by),
        or it would be counted call `call_cap + 1` or the `loop_after`th identical call in a
        row. A refused call changes no counter. The cost cap is judged afresh on every ask and
        its refusal is not kept, so a raised budget lets the same step through; the other
        answers are kept per (run, step). One transaction: the budget check and the admission
        cost one commit, not a read and a commit."""
        ...

    def add_cost(self, run_id: str, step_id: str, usd: float) -> tuple[float, float]:
        """Set the cost of the call at (run, step); the run's spend (before, after)."""
        ...

    def budget(self, run_id: str) -> RunBudget: ...

    def raise_budget(self, run_id: str, usd: float) -> RunBudget:
        """Add `usd` to the run's cost cap (a person did: `tether budget raise`)."""
        ...

    def take(
        self,
        key: str,
        *,
        capacity: float,
        per_second: float,
        amount: float,
        now: float,
        force: bool = False,
    ) -> float:
        """Take `amount` from bucket `key` (full when new); 0.0 when taken, else the seconds
        until it could be. At least one unit must be left to take 0. `force` takes it anyway,
        into debt: the tokens a call used are known only after it."""
        ...

    def breaker_allow(self, key: str, *, now: float, cooldown: float) -> BreakerState:
        """Closed: allowed. Open: refused until `cooldown` has passed, then one probe is let
        through (half-open); another probe only if that one never reported back in `cooldown`."""
        ...

    def breaker_record(self, key: str, *, ok: bool, now: float, threshold: int) -> BreakerState:
        """A success closes the breaker; the `threshold`th consecutive failure, or a failed
        probe, opens it."""
        ...

    def close(self) -> None: ...
