"""The chain guards I12's per-attempt routing: an open circuit makes the router fall back, and a
successful probe after the cool-down closes it again."""

from __future__ import annotations

import asyncio

import pytest

from tether.errors import ModelError, ModelRetryableError, RateLimited
from tether.foundation.guards.chain import GuardChain, RouteGuard
from tether.foundation.guards.contract import CallOutcome, GuardedCall
from tether.foundation.limits.config import LimitsConfig
from tether.foundation.limits.guard import LimitsGuard
from tether.foundation.limits.memory import MemoryLimitsStore
from tether.foundation.models.backends.scripted import ScriptedBackend
from tether.foundation.models.config import RoutingTable
from tether.foundation.models.contract import Message, ModelRequest, Route
from tether.foundation.models.router import ModelRouter
from tether.foundation.policy.audit import MemoryAuditLog
from tether.foundation.policy.gate import PolicyGate
from tether.foundation.policy.rules import PolicyRules

REQUEST = ModelRequest(task_class="draft", messages=[Message.user("hello")])


class Setup:
    def __init__(self, *routes: str) -> None:
        self.now = 0.0
        self.backends = {name: ScriptedBackend() for name in routes}
        table = RoutingTable(
            routes={"draft": tuple(Route(backend=n, model="m", family=n) for n in routes)}
        )
        self.router = ModelRouter(table, self.backends)
        limits = LimitsConfig.model_validate(
            {"backends": {routes[0]: {"failure_threshold": 2, "cooldown_seconds": 30}}}
        )
        self.chain = GuardChain(
            [PolicyGate(PolicyRules()),
             LimitsGuard(MemoryLimitsStore(), limits, clock=lambda: self.now)],
            MemoryAuditLog(),
        )  # fmt: skip
        self.steps = 0

    def call(self) -> tuple[str, list[str]]:
        """One guarded model call as the runtime makes it: (answering backend, decisions)."""
        self.steps += 1
        call = GuardedCall(
            run_id="run-1", workflow="w@1.0.0", step_id=f"0.{self.steps}", kind="model",
            target="draft", arguments={"turn": self.steps},
        )  # fmt: skip
        self.chain.before(call)
        hook = RouteGuard(self.chain, call)
        try:
            routed = asyncio.run(self.router.complete(REQUEST, before_attempt=hook))
        except ModelError as e:
            decisions = hook.finish(CallOutcome(ok=False, error=str(e)))
            raise type(e)(f"{e} | {[d.rule + ':' + d.outcome for d in decisions]}") from e
        decisions = hook.finish(CallOutcome(ok=True, tokens=5, cost_usd=0.01))
        return routed.decision.backend, [f"{d.guard}:{d.outcome}" for d in decisions]


def test_after_n_failures_the_router_skips_the_open_route_and_a_good_probe_closes_it() -> None:
    s = Setup("primary", "fallback")
    down = ModelRetryableError("503 from the provider's test server", status=503)
    s.backends["primary"].add(down, down)
    s.backends["fallback"].add("a", "b", "c")
    assert s.call() == ("fallback", [])
    assert s.call() == ("fallback", ["breaker:warn"])  # the second failure opened the circuit
    assert s.call() == ("fallback", [])  # primary skipped without being asked
    assert len(s.backends["primary"].requests) == 2
    s.now += 30
    s.backends["primary"].add("probe answered")
    assert s.call() == ("primary", ["breaker:allow"])  # the half-open probe
    s.backends["primary"].add("closed again")
    assert s.call() == ("primary", [])


def test_with_its_only_route_open_the_call_fails_fast_as_rate_limited() -> None:
    s = Setup("primary")
    down = ModelRetryableError("503", status=503)
    s.backends["primary"].add(down, down)
    for _ in range(2):
        with pytest.raises(ModelError):
            s.call()
    with pytest.raises(RateLimited, match="open circuit"):
        s.call()
    assert len(s.backends["primary"].requests) == 2
