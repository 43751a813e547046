"""I10 LimitsGuard: the guard chain's link for budgets, loops, rate limits and breakers.

Per call (`before`): the run's cost cap (stop, or pause for a person), then one atomic
`admit` for the model-call cap and loop detection. Per backend attempt (`before_backend`): the
backend's circuit breaker, then its request and token buckets. Afterwards (`after`): the cost
is recorded (a warning as the run crosses half its cap, and as it reaches it), tokens are
debited, and the breaker learns whether the backend answered.

A store that cannot be reached fails closed: `before` refuses the call with `LimitsUnavailable`
(a budget that cannot be checked is not spent). A call already made when the store is lost
keeps its result; `after` journals a warning that its cost and tokens went uncounted.

Every counter a run owns is idempotent per (run, step), so a call re-executed after a crash is
judged as it was the first time and counted once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from tether.errors import (
    BudgetExceeded,
    BudgetPaused,
    GuardError,
    InvalidInput,
    LimitsUnavailable,
    LoopDetected,
    RateLimited,
)
from tether.foundation.guards.contract import CallOutcome, GuardDecision, GuardedCall, Outcome
from tether.foundation.limits.contract import LimitsStore, RunBudget

log = logging.getLogger("tether.limits")

if TYPE_CHECKING:
    from tether.foundation.limits.config import LimitsConfig


def _refuse(error: GuardError, guard: str, rule: str, outcome: Outcome = "deny") -> GuardError:
    error.decisions = (GuardDecision(guard=guard, rule=rule, outcome=outcome, reason=str(error)),)
    return error


class LimitsGuard:
    def __init__(
        self, store: LimitsStore, config: LimitsConfig, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.store, self.config, self._clock = store, config, clock

    def before(self, call: GuardedCall) -> list[GuardDecision]:
        budget = self.config.budget_for(call.workflow)
        decisions: list[GuardDecision] = []
        if budget.cost_cap_usd is not None:
            spent = self.store.budget(call.run_id)
            cap = budget.cost_cap_usd + spent.raised_usd
            told = f"run {call.run_id} has spent ${spent.spent_usd:.4f} of its ${cap:.4f} cap"
            if spent.spent_usd >= cap and budget.on_cost_cap == "pause":
                raise _refuse(
                    BudgetPaused(
                        f"{told}; it waits until a person raises the budget "
                        f"(`tether budget raise {call.run_id} --usd X`)",
                        run_id=call.run_id,
                        spent_usd=spent.spent_usd,
                        cap_usd=cap,
                    ),
                    "budget",
                    "cost_cap",
                    "pause",
                )
            if spent.spent_usd >= cap:
                raise _refuse(
                    BudgetExceeded(f"{told}; raise [limits] cost_cap_usd for {call.workflow}"),
                    "budget",
                    "cost_cap",
                )
            decisions.append(
                GuardDecision(guard="budget", rule="cost_cap", outcome="allow", reason=told)
            )
        admission = self.store.admit(
            call.run_id,
            call.step_id,
            call.fingerprint,
            counted=call.kind == "model",
            call_cap=budget.model_call_cap,
            loop_after=budget.loop_after,
        )
        if admission.refused == "call_cap":
            raise _refuse(
                BudgetExceeded(
                    f"run {call.run_id} has made its {admission.calls} model calls, the cap for "
                    f"{call.workflow}; set [limits] model_call_cap (or one for this workflow)"
                ),
                "budget",
                "model_call_cap",
            )
        if admission.refused == "loop":
            raise _refuse(
                LoopDetected(
                    f"{call.kind} {call.target!r} was called {admission.streak} times in a row "
                    f"with the same arguments (step {call.step_id}); the agent is looping"
                ),
                "loop",
                "loop_after",
            )
        if call.kind == "model":
            decisions.append(
                GuardDecision(
                    guard="budget",
                    rule="model_call_cap",
                    outcome="allow",
                    reason=f"model call {admission.calls} of {budget.model_call_cap}",
                )
            )
        if call.backend is not None:
            decisions += self.before_backend(call)
        return decisions

    def before_backend(self, call: GuardedCall) -> list[GuardDecision]:
        backend = call.backend
        if backend is None:
            return []
        limits, now = self.config.backend_limits(backend), self._clock()
        breaker = self.store.breaker_allow(backend, now=now, cooldown=limits.cooldown_seconds)
        if not breaker.allowed:
            raise _refuse(
                RateLimited(
                    f"backend {backend!r} has an open circuit after {breaker.failures} "
                    f"consecutive failures; a probe goes in {breaker.retry_after:.1f}s",
                    retry_after=breaker.retry_after,
                ),
                "breaker",
                backend,
            )
        decisions = []
        if breaker.phase == "half_open":
            decisions.append(
                GuardDecision(
                    guard="breaker",
                    rule=backend,
                    outcome="allow",
                    reason=f"half-open: this call probes {backend!r}",
                )
            )
        for rule, per_minute, amount in (
            ("requests_per_minute", limits.requests_per_minute, 1.0),
            ("tokens_per_minute", limits.tokens_per_minute, 0.0),
        ):
            if per_minute is None:
                continue
            wait = self.store.take(
                f"{backend}:{rule}",
                capacity=per_minute,
                per_second=per_minute / 60,
                amount=amount,
                now=now,
            )
            if wait > 0:
                raise _refuse(
                    RateLimited(
                        f"backend {backend!r} is over {per_minute:g} {rule.replace('_', ' ')}"
                        f"; capacity returns in {wait:.1f}s",
                        retry_after=wait,
                    ),
                    "rate",
                    rule,
                )
        return decisions

    def after(self, call: GuardedCall, outcome: CallOutcome) -> list[GuardDecision]:
        try:
            return self._after(call, outcome)
        except LimitsUnavailable as e:
            log.warning("run %s step %s: %s", call.run_id, call.step_id, e)
            return [
                GuardDecision(
                    guard="budget", rule="store", outcome="warn",
                    reason=f"this call's cost and tokens were not counted: {e}",
                )
            ]  # fmt: skip

    def _after(self, call: GuardedCall, outcome: CallOutcome) -> list[GuardDecision]:
        decisions = self._record_cost(call, outcome.cost_usd) if outcome.cost_usd > 0 else []
        backend = call.backend
        if backend is None:
            return decisions
        limits, now = self.config.backend_limits(backend), self._clock()
        if limits.tokens_per_minute is not None and outcome.tokens > 0:
            self.store.take(
                f"{backend}:tokens_per_minute",
                capacity=limits.tokens_per_minute,
                per_second=limits.tokens_per_minute / 60,
                amount=outcome.tokens,
                now=now,
                force=True,
            )
        state = self.store.breaker_record(
            backend, ok=outcome.ok, now=now, threshold=limits.failure_threshold
        )
        if not outcome.ok and state.phase == "open":
            decisions.append(
                GuardDecision(
                    guard="breaker",
                    rule=backend,
                    outcome="warn",
                    reason=f"circuit for {backend!r} is open after {state.failures} consecutive "
                    f"failures (last: {outcome.error or 'unknown'})",
                )
            )
        return decisions

    def _record_cost(self, call: GuardedCall, usd: float) -> list[GuardDecision]:
        before, after = self.store.add_cost(call.run_id, call.step_id, usd)
        cap = self.config.budget_for(call.workflow).cost_cap_usd
        if cap is None:
            return []
        cap += self.store.budget(call.run_id).raised_usd
        for share, rule, then in (
            (1.0, "cost_cap", "the next call will be refused"),
            (0.5, "cost_cap_50", "half the budget is gone"),
        ):
            if before < cap * share <= after:
                return [
                    GuardDecision(
                        guard="budget",
                        rule=rule,
                        outcome="warn",
                        reason=f"run {call.run_id} has spent ${after:.4f} of its "
                        f"${cap:.4f} cap: {then}",
                    )
                ]
        return []

    def raise_budget(self, run_id: str, usd: float) -> RunBudget:
        """Add `usd` to one run's cost cap; a paused run may go on once the runtime wakes it."""
        if usd <= 0:
            raise InvalidInput("budget raise", f"--usd must be a positive amount, not {usd}")
        return self.store.raise_budget(run_id, usd)
