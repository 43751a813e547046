"""The one guard chain every `ctx.tool` and `ctx.model` call passes: I9 policy, then I10 limits.

The runtime builds one `GuardedCall` per call and asks `GuardChain.before(call)` before
dispatch; it journals the returned `GuardDecision`s with the call, so a replay takes the same
path. A refusal raises the guard's own `GuardError` (PolicyDenied, BudgetExceeded,
BudgetPaused, LoopDetected, RateLimited) carrying every decision made for the call in
`error.decisions`. After the call, `after(call, outcome)` feeds what happened to the cost cap,
the token bucket and the circuit breaker.

For a model call the router picks a backend per attempt: `before(call)` with `backend=None`
judges the call once, and `RouteGuard(chain, call)`, the router's `before_attempt` hook, asks
`before_backend` for each attempt's backend and reports each attempt's end. A tool call may
carry its lane as `backend` and pass `before` alone.

Every policy decision and every limits trip is written to the audit log, and the text in
decisions, audit rows and error messages passes through the I7 redactor first.

The chain knows guards only by the `Guard` protocol; which guards it runs, built from which
settings, is decided where the other foundations are assembled (`runtime/foundations.py`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from tether.errors import GuardError
from tether.foundation.guards.contract import (
    CANONICAL_JSON,
    CallOutcome,
    Guard,
    GuardDecision,
    GuardedCall,
)
from tether.foundation.policy.contract import AuditLog, AuditRecord
from tether.foundation.secrets.redaction import redact

_ARGUMENTS_IN_AUDIT = 2000  # characters of JSON arguments an audit row keeps


class GuardChain:
    """Runs the guards in order, audits what must be audited, and redacts what leaves."""

    def __init__(
        self,
        guards: Sequence[Guard],
        audit: AuditLog,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.guards, self.audit, self._clock = list(guards), audit, clock

    def before(self, call: GuardedCall) -> list[GuardDecision]:
        """Every guard's decisions on `call`; raises the refusing guard's GuardError."""
        return self._run(call, lambda g: g.before(call))

    def before_backend(self, call: GuardedCall) -> list[GuardDecision]:
        """Rate limit and circuit breaker for one attempt on `call.backend`."""
        return self._run(call, lambda g: g.before_backend(call))

    def after(self, call: GuardedCall, outcome: CallOutcome) -> list[GuardDecision]:
        """Feed the outcome to the guards; returns trips it caused (cost warning, breaker open)."""
        decisions: list[GuardDecision] = []
        for guard in self.guards:
            decisions += self._redacted(guard.after(call, outcome))
        self._audit(call, decisions)
        return decisions

    def _run(
        self, call: GuardedCall, step: Callable[[Guard], list[GuardDecision]]
    ) -> list[GuardDecision]:
        decisions: list[GuardDecision] = []
        for guard in self.guards:
            try:
                decisions += self._redacted(step(guard))
            except GuardError as error:
                decisions += self._redacted(error.decisions)
                self._audit(call, decisions)
                error.args = tuple(redact(str(a)) for a in error.args)
                error.decisions = tuple(decisions)
                raise
        self._audit(call, decisions)
        return decisions

    @staticmethod
    def _redacted(decisions: Iterable[GuardDecision]) -> list[GuardDecision]:
        """The decisions with secrets struck from their reasons; one that names none is
        returned as it is (decisions are frozen), not copied."""
        out = []
        for d in decisions:
            reason = redact(d.reason)
            out.append(d if reason == d.reason else d.model_copy(update={"reason": reason}))
        return out

    def _audit(self, call: GuardedCall, decisions: list[GuardDecision]) -> None:
        """I9 audits every decision it makes; I10 audits only its trips."""
        rows = [d for d in decisions if d.guard == "policy" or d.outcome != "allow"]
        if not rows:
            return
        at = datetime.fromtimestamp(self._clock(), UTC)
        arguments = redact(CANONICAL_JSON.encode(call.arguments))
        for d in rows:
            self.audit.record(
                AuditRecord(
                    at=at,
                    run_id=call.run_id,
                    workflow=call.workflow,
                    step_id=call.step_id,
                    kind=call.kind,
                    target=call.target,
                    backend=call.backend,
                    who=call.identity.subject if call.identity else None,
                    arguments=arguments[:_ARGUMENTS_IN_AUDIT],
                    guard=d.guard,
                    rule=d.rule,
                    outcome=d.outcome,
                    reason=d.reason,
                )
            )


class RouteGuard:
    """The router's per-attempt hook for one model call (`ModelRouter.call(before_attempt=)`).

    Each attempt passes `before_backend` on its route's backend (a RateLimited makes the router
    skip that route). The router reports no attempt's end, but a new attempt means the one
    before it failed, so that failure goes to the breaker then; `finish` reports the last one.
    """

    def __init__(self, chain: GuardChain, call: GuardedCall) -> None:
        self.chain, self.call = chain, call
        self.decisions: list[GuardDecision] = []
        self._dispatched: GuardedCall | None = None

    async def __call__(self, attempt: Any) -> None:  # a models.contract.RouteAttempt
        if self._dispatched is not None:
            self._report(CallOutcome(ok=False, error="failed; the router tried again"))
        on_backend = self.call.on_backend(attempt.route.backend)
        self.decisions += self.chain.before_backend(on_backend)
        self._dispatched = on_backend

    def finish(self, outcome: CallOutcome) -> list[GuardDecision]:
        """Report how the call ended (tokens and cost on success); returns every decision made
        for its attempts, trips included, for the journal."""
        self._report(outcome)
        return self.decisions

    def _report(self, outcome: CallOutcome) -> None:
        if self._dispatched is not None:
            self.decisions += self.chain.after(self._dispatched, outcome)
            self._dispatched = None
