"""I9 PolicyGate: the first link of the guard chain; it decides whether a call may run at all.

It judges each call once (`before`), never per backend attempt: which backend answers does not
change whether the caller may ask. A denial is `PolicyDenied` naming the rule, raised before
any counter moves, so a denied call costs no budget and never executes. A rule that demands
an approval lets a call through only with the I6 request that released it (the runtime asks
before dispatch); one that comes without is denied, never run unapproved.
"""

from __future__ import annotations

from tether.errors import PolicyDenied
from tether.foundation.guards.contract import CallOutcome, GuardDecision, GuardedCall
from tether.foundation.policy.rules import PolicyRules


class PolicyGate:
    def __init__(self, rules: PolicyRules) -> None:
        self.rules = rules

    def before(self, call: GuardedCall) -> list[GuardDecision]:
        rule, effect, reason = self.rules.decide(call)
        if effect == "require_approval":
            if call.approval is not None:
                effect, reason = "allow", f"{reason}; released by approval {call.approval}"
            else:
                effect, reason = "deny", f"{reason}; it needs an approval and came without one"
        decision = GuardDecision(
            guard="policy",
            rule=rule,
            outcome="allow" if effect == "allow" else "deny",
            reason=reason,
        )
        if effect == "deny":
            error = PolicyDenied(rule, f"{call.kind} {call.target!r}: {reason}")
            error.decisions = (decision,)
            raise error
        return [decision]

    def before_backend(self, call: GuardedCall) -> list[GuardDecision]:
        return []

    def after(self, call: GuardedCall, outcome: CallOutcome) -> list[GuardDecision]:
        return []
