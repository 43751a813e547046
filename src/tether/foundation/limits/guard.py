"""I10 LimitsGuard: the guard chain's link for budgets, loops, rate limits and breakers.

Per call (`before`): one atomic `admit` per budget for its cost cap (stop, or pause for a
person), model-call cap and loop detection. Per backend attempt (`before_backend`): the
backend's circuit breaker, then its request and token buckets. Afterwards (`after`): the cost
is recorded (a warning as the run crosses half its cap, and as it reaches it), tokens are
debited, and the breaker learns whether the backend answered.

Budgets belong to the run tree: every call counts against its root run's budget (the root
workflow's call cap, cost cap and loop window), and against each sub-budget given on its way
down (`ctx.invoke(..., budget=Budget(...))`). Every counter is idempotent per call (run, step,
attempt), so a call re-executed after a crash is judged as it was the first time and counted
once, while a retry of a failed call is a call of its own.

A store that cannot be reached fails closed: `before` refuses the call with `LimitsUnavailable`
(a budget that cannot be checked is not spent). A call already made when the store is lost
keeps its result; `after` journals a warning that its cost and tokens went uncounted.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
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
from tether.foundation.limits.contract import Admission, LimitsStore, RunBudget

log = logging.getLogger("tether.limits")

if TYPE_CHECKING:
    from tether.foundation.limits.config import Budget, LimitsConfig


_NO_LOOP_LIMIT = 2**31


@dataclass(frozen=True, slots=True)
class _Scope:
    """One budget a call spends from: a sub-budget's run, or the root of the run tree."""

    key: str  # the run whose counters these are
    name: str  # how messages name it
    call_cap: int
    cost_cap: float | None
    loop_after: int
    pause: bool  # at the cost cap: pause for a person (the root's, in pause mode) or stop


def _place(call: GuardedCall) -> str:
    """The call's place in its tree, what a budget judges once: a re-execution after a crash
    has the same place. A model call retried after its failure was journaled (`tether retry`)
    is a new call, for it is paid again; a tool call's retries, which no call cap counts, keep
    the first attempt's answer, so retrying one call is not taken for a loop."""
    attempt = f"#{call.attempt}" if call.kind == "model" else ""
    return f"{call.run_id}/{call.step_id}{attempt}"


def _refuse(error: GuardError, guard: str, rule: str, outcome: Outcome = "deny") -> GuardError:
    error.decisions = (GuardDecision(guard=guard, rule=rule, outcome=outcome, reason=str(error)),)
    return error


class LimitsGuard:
    def __init__(
        self, store: LimitsStore, config: LimitsConfig, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.store, self.config, self._clock = store, config, clock
        self._budgets: dict[str, Budget] = {}

    def _budget_for(self, workflow: str) -> Budget:
        """The configured budget of `workflow`, merged once: the config does not change while
        the guard lives, and merging it is a validation per call otherwise."""
        budget = self._budgets.get(workflow)
        if budget is None:
            budget = self._budgets[workflow] = self.config.budget_for(workflow)
        return budget

    def _scopes(self, call: GuardedCall) -> list[_Scope]:
        """The budgets the call spends from, innermost first: each sub-budget given to a run
        on its way down the tree, then the root's (its workflow's configured budget)."""
        root = self._budget_for(call.root_workflow or call.workflow)
        scopes = [
            _Scope(
                key=b.run_id,
                name=f"run {b.run_id} (a sub-budget in the tree of {call.root})",
                call_cap=min(b.model_call_cap or root.model_call_cap, root.model_call_cap),
                cost_cap=b.cost_cap_usd,
                loop_after=_NO_LOOP_LIMIT,  # loops are the root's to detect, over the tree
                pause=False,
            )
            for b in reversed(call.sub_budgets)
        ]
        if call.root != call.run_id and self.config.overrides(call.workflow):
            own = self._budget_for(call.workflow)  # [limits.workflows.<child>] holds too
            scopes.insert(
                0,
                _Scope(
                    key=call.run_id,
                    name=f"run {call.run_id} ({call.workflow}'s own budget, in the tree of "
                    f"{call.root})",
                    call_cap=min(own.model_call_cap, root.model_call_cap),
                    cost_cap=own.cost_cap_usd,
                    loop_after=_NO_LOOP_LIMIT,
                    pause=False,
                ),
            )
        tree = "the run tree of " if call.root != call.run_id else "run "
        scopes.append(
            _Scope(
                key=call.root,
                name=f"{tree}{call.root}",
                call_cap=root.model_call_cap,
                cost_cap=root.cost_cap_usd,
                loop_after=root.loop_after,
                pause=root.on_cost_cap == "pause",
            )
        )
        return scopes

    def before(self, call: GuardedCall) -> list[GuardDecision]:
        costs: list[GuardDecision] = []
        caps: list[GuardDecision] = []
        place = _place(call)
        # Innermost first, each budget's cost cap judged in its own admission (one commit):
        # when an outer budget refuses, an inner one has counted a call that was not made,
        # which errs only towards stopping that subtree sooner.
        for scope in self._scopes(call):
            admission = self.store.admit(
                scope.key,
                place,
                call.fingerprint,
                counted=call.kind == "model",
                call_cap=scope.call_cap,
                loop_after=scope.loop_after,
                cost_cap=scope.cost_cap,
            )
            if scope.cost_cap is not None:
                costs.append(self._check_cost(call, scope, scope.cost_cap, admission))
            if admission.refused == "call_cap":
                raise _refuse(
                    BudgetExceeded(
                        f"{scope.name} has made its {admission.calls} model calls, the cap "
                        f"(refused: {call.kind} {call.target!r} of run {call.run_id}, step "
                        f"{call.step_id}); set [limits] model_call_cap (or one for "
                        f"{call.root_workflow or call.workflow})"
                    ),
                    "budget",
                    "model_call_cap",
                )
            if admission.refused == "loop":
                raise _refuse(
                    LoopDetected(
                        f"{call.kind} {call.target!r} was called {admission.streak} times in a "
                        f"row with the same arguments (run {call.run_id}, step {call.step_id}, "
                        f"in {scope.name}); the agent is looping"
                    ),
                    "loop",
                    "loop_after",
                )
            if call.kind == "model":
                caps.append(
                    GuardDecision(
                        guard="budget",
                        rule="model_call_cap",
                        outcome="allow",
                        reason=f"model call {admission.calls} of {scope.call_cap} for {scope.name}",
                    )
                )
        decisions = costs + caps
        if call.backend is not None:
            decisions += self.before_backend(call)
        return decisions

    def _check_cost(
        self, call: GuardedCall, scope: _Scope, cost_cap: float, admission: Admission
    ) -> GuardDecision:
        """The cost-cap decision the admission took: refused (stop, or pause for a person) or
        allowed, in words."""
        spent, cap = admission.spent_usd, cost_cap + admission.raised_usd
        told = f"{scope.name} has spent ${spent:.4f} of its ${cap:.4f} cap"
        if admission.refused == "cost_cap" and scope.pause:
            raise _refuse(
                BudgetPaused(
                    f"{told}; it waits until a person raises the budget "
                    f"(`tether budget raise {scope.key} --usd X`)",
                    run_id=scope.key,
                    spent_usd=spent,
                    cap_usd=cap,
                ),
                "budget",
                "cost_cap",
                "pause",
            )
        if admission.refused == "cost_cap":
            where = (
                "the sub-budget given to ctx.invoke"
                if scope.key != call.root
                else (f"[limits] cost_cap_usd for {call.root_workflow or call.workflow}")
            )
            raise _refuse(BudgetExceeded(f"{told}; raise {where}"), "budget", "cost_cap")
        return GuardDecision(guard="budget", rule="cost_cap", outcome="allow", reason=told)

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
        decisions: list[GuardDecision] = []
        for scope in self._scopes(call):
            before, after = self.store.add_cost(scope.key, _place(call), usd)
            if scope.cost_cap is None:
                continue
            cap = scope.cost_cap + self.store.budget(scope.key).raised_usd
            for share, rule, then in (
                (1.0, "cost_cap", "the next call will be refused"),
                (0.5, "cost_cap_50", "half the budget is gone"),
            ):
                if before < cap * share <= after:
                    decisions.append(
                        GuardDecision(
                            guard="budget",
                            rule=rule,
                            outcome="warn",
                            reason=f"{scope.name} has spent ${after:.4f} of its "
                            f"${cap:.4f} cap: {then}",
                        )
                    )
                    break
        return decisions

    def raise_budget(self, run_id: str, usd: float) -> RunBudget:
        """Add `usd` to a budget's cost cap (the root's, for a tree); a paused run may go on
        once the runtime wakes it."""
        if not math.isfinite(usd) or usd <= 0:
            raise InvalidInput("budget raise", f"--usd must be a finite positive amount, not {usd}")
        return self.store.raise_budget(run_id, usd)
