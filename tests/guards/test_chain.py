"""The guard chain: every tool and model call is judged by I9 then I10; refusals raise the
guard's own error carrying the decisions, and every policy decision and limits trip is audited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tether.errors import (
    BudgetExceeded,
    BudgetPaused,
    InvalidInput,
    LoopDetected,
    PolicyDenied,
    RateLimited,
)
from tether.foundation.blobs.files import FileBlobStore
from tether.foundation.guards.chain import GuardChain
from tether.foundation.guards.contract import CallOutcome, GuardedCall
from tether.foundation.identity.contract import Identity
from tether.foundation.limits.config import LimitsConfig
from tether.foundation.limits.guard import LimitsGuard
from tether.foundation.limits.memory import MemoryLimitsStore
from tether.foundation.policy.audit import MemoryAuditLog
from tether.foundation.policy.gate import PolicyGate
from tether.foundation.policy.rules import PolicyRules
from tether.foundation.secrets.contract import Secret
from tether.runtime.foundations import Foundations
from tether.settings import Settings

ALICE = Identity(subject="user:alice", roles=("analyst",))


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class Guards:
    """A chain on memory backends, with the handles a test asserts through."""

    def __init__(self, rules: list[dict[str, Any]] | None = None, **limits: Any) -> None:
        self.clock, self.audit, self.store = Clock(), MemoryAuditLog(), MemoryLimitsStore()
        policy = PolicyGate(PolicyRules.model_validate({"rules": rules or []}))
        config = LimitsConfig.model_validate({"backend": "memory", **limits})
        self.limits = LimitsGuard(self.store, config, clock=self.clock)
        self.chain = GuardChain([policy, self.limits], self.audit, clock=self.clock)


def call(step: str, kind: str = "model", target: str = "draft", **kw: Any) -> GuardedCall:
    fields: dict[str, Any] = {
        "run_id": "run-1", "workflow": "triage@1.0.0", "step_id": step, "kind": kind,
        "target": target, "arguments": {"n": step}, "identity": ALICE, **kw,
    }  # fmt: skip
    return GuardedCall.model_validate(fields)


def test_policy_denied_tool_call_is_audited_with_rule_and_counts_nothing() -> None:
    g = Guards([{"name": "no-email", "effect": "deny", "tool": "send_*", "reason": "no mail"}])
    with pytest.raises(PolicyDenied, match="no-email") as denied:
        g.chain.before(call("0.1", kind="tool", target="send_email"))
    assert denied.value.rule == "no-email"
    assert [(d.guard, d.outcome) for d in denied.value.decisions] == [("policy", "deny")]
    [row] = g.audit.query()
    assert (row.who, row.target, row.rule, row.outcome) == ("user:alice", "send_email",
                                                            "no-email", "deny")  # fmt: skip
    assert g.store.budget("run-1").calls == 0


def test_every_allowed_call_is_audited_by_policy_and_journals_each_guards_decision() -> None:
    g = Guards()
    decisions = g.chain.before(call("0.1"))
    assert [(d.guard, d.rule, d.outcome) for d in decisions] == [
        ("policy", "default", "allow"),
        ("budget", "cost_cap", "allow"),
        ("budget", "model_call_cap", "allow"),
    ]
    assert [(r.guard, r.outcome) for r in g.audit.query()] == [("policy", "allow")]


def test_model_call_51_raises_budget_exceeded_with_an_audit_row() -> None:
    g = Guards()
    for i in range(50):
        g.chain.before(call(f"0.{i}"))
    with pytest.raises(BudgetExceeded, match="50 model calls") as stopped:
        g.chain.before(call("0.50"))
    assert stopped.value.decisions[-1].rule == "model_call_cap"
    assert [(r.rule, r.step_id) for r in g.audit.query(outcome="deny")] == [
        ("model_call_cap", "0.50")
    ]


def test_a_call_re_judged_after_a_crash_is_not_counted_twice() -> None:
    g = Guards(model_call_cap=2)
    g.chain.before(call("0.1"))
    g.chain.before(call("0.2"))
    g.chain.before(call("0.2"))  # the worker died before 0.2's result was journaled
    assert g.store.budget("run-1").calls == 2
    with pytest.raises(BudgetExceeded):
        g.chain.before(call("0.3"))


def test_the_call_cap_is_set_per_workflow() -> None:
    g = Guards(workflows={"triage": {"model_call_cap": 1}})
    g.chain.before(call("0.1"))
    with pytest.raises(BudgetExceeded):
        g.chain.before(call("0.2"))
    g.chain.before(call("0.3", workflow="other@1.0.0", run_id="run-2"))


def test_the_third_identical_tool_call_in_a_row_raises_loop_detected() -> None:
    g = Guards()
    same = {"kind": "tool", "target": "search", "arguments": {"q": "why"}}
    g.chain.before(call("0.1", **same))
    g.chain.before(call("0.2", **same))
    with pytest.raises(LoopDetected, match="'search' was called 3 times in a row"):
        g.chain.before(call("0.3", **same))
    assert [r.guard for r in g.audit.query(outcome="deny")] == ["loop"]


def test_crossing_half_the_cost_cap_warns_once_and_the_cap_stops_the_next_call() -> None:
    g = Guards(cost_cap_usd=1.0)
    warnings = [g.chain.after(call(f"0.{i}"), CallOutcome(ok=True, cost_usd=0.3)) for i in range(4)]
    assert [[d.rule for d in w] for w in warnings] == [[], ["cost_cap_50"], [], ["cost_cap"]]
    with pytest.raises(BudgetExceeded, match=r"spent \$1.2000 of its \$1.0000 cap"):
        g.chain.before(call("0.9"))
    assert [(r.rule, r.outcome) for r in g.audit.query() if r.guard == "budget"] == [
        ("cost_cap_50", "warn"), ("cost_cap", "warn"), ("cost_cap", "deny"),
    ]  # fmt: skip


def test_in_pause_mode_the_cap_pauses_the_run_until_a_person_raises_the_budget() -> None:
    g = Guards(cost_cap_usd=1.0, on_cost_cap="pause")
    g.chain.before(call("0.1"))
    g.chain.after(call("0.1"), CallOutcome(ok=True, cost_usd=1.0))
    with pytest.raises(BudgetPaused, match="tether budget raise run-1") as paused:
        g.chain.before(call("0.2"))
    assert (paused.value.spent_usd, paused.value.cap_usd) == (1.0, 1.0)
    assert paused.value.decisions[-1].outcome == "pause"
    assert g.audit.query(outcome="pause")[0].rule == "cost_cap"
    g.limits.raise_budget("run-1", 0.5)
    g.chain.before(call("0.2"))  # the same step, replayed after the wake-up
    assert g.store.budget("run-1").calls == 2


def test_an_open_circuit_fails_fast_and_a_successful_probe_closes_it() -> None:
    g = Guards(backends={"api": {"failure_threshold": 2, "cooldown_seconds": 30}})
    attempt = call("0.1").on_backend("api")
    for _ in range(2):
        g.chain.before_backend(attempt)
        g.chain.after(attempt, CallOutcome(ok=False, error="503"))
    with pytest.raises(RateLimited, match="open circuit") as fast:
        g.chain.before_backend(attempt)
    assert fast.value.retry_after == pytest.approx(30.0)
    g.clock.now += 30
    probe = g.chain.before_backend(attempt)
    assert [d.reason for d in probe] == ["half-open: this call probes 'api'"]
    g.chain.after(attempt, CallOutcome(ok=True, tokens=10))
    assert g.chain.before_backend(attempt) == []
    assert [(r.guard, r.outcome) for r in g.audit.query()] == [
        ("breaker", "warn"), ("breaker", "deny"),
    ]  # fmt: skip


def test_a_backend_over_its_request_rate_is_refused_with_when_to_retry() -> None:
    g = Guards(backends={"api": {"requests_per_minute": 2}})
    for i in range(2):
        g.chain.before(call(f"0.{i}", backend="api"))
    with pytest.raises(RateLimited, match="over 2 requests per minute") as limited:
        g.chain.before(call("0.3", backend="api"))
    assert limited.value.retry_after == pytest.approx(30.0)
    g.clock.now += 30
    g.chain.before(call("0.3", backend="api"))


def test_tokens_a_call_used_hold_back_the_next_call_on_that_backend() -> None:
    g = Guards(backends={"api": {"tokens_per_minute": 600}})
    g.chain.before(call("0.1", backend="api"))
    g.chain.after(call("0.1", backend="api"), CallOutcome(ok=True, tokens=1200))
    with pytest.raises(RateLimited, match="tokens per minute"):
        g.chain.before_backend(call("0.2", backend="api"))


def test_a_known_secret_reaches_no_audit_row_decision_or_error() -> None:
    key = Secret("PROVIDER_KEY", "sk-test-5d9f1c0e7a")
    g = Guards(
        [{"name": "no-keys", "effect": "deny", "arguments": {"token": "sk-"}}],
        backends={"api": {"failure_threshold": 1}},
    )
    leaky = call("0.1", kind="tool", target="fetch", arguments={"token": key.reveal()})
    with pytest.raises(PolicyDenied) as denied:
        g.chain.before(leaky)
    attempt = call("0.2").on_backend("api")
    trips = g.chain.after(attempt, CallOutcome(ok=False, error=f"bad key {key.reveal()}"))
    with pytest.raises(RateLimited) as fast:
        g.chain.before_backend(attempt)
    texts = [str(denied.value), str(fast.value), *(d.reason for d in trips)]
    texts += [r.model_dump_json() for r in g.audit.query()]
    assert all(key.reveal() not in t for t in texts)
    assert '"token": "***"' in g.audit.query()[0].arguments
    assert "bad key ***" in trips[0].reason


def test_the_fingerprint_ignores_argument_order() -> None:
    a = call("0.1", arguments={"x": 1, "y": [1, 2]})
    b = call("0.2", arguments={"y": [1, 2], "x": 1})
    assert a.fingerprint == b.fingerprint != call("0.3", arguments={"x": 2}).fingerprint


def test_the_chain_is_built_from_the_policy_and_limits_tables(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text(
        "rules:\n  - {name: drafts, effect: allow, task_class: draft}\n"
    )
    settings = Settings(
        data_dir=tmp_path,
        config_file=tmp_path / "tether.toml",
        policy={"rules": "policy.yaml", "default": "deny"},
        limits={"workflows": {"triage@1.0.0": {"model_call_cap": 1}}},
    )
    chain = Foundations(settings, FileBlobStore(tmp_path / "blobs")).guards
    chain.before(call("0.1"))
    with pytest.raises(BudgetExceeded):
        chain.before(call("0.2"))
    with pytest.raises(PolicyDenied, match="'default'"):
        chain.before(call("0.3", kind="tool", target="search"))
    assert [r.outcome for r in chain.audit.query()] == ["allow", "allow", "deny", "deny"]


def test_a_budget_is_raised_only_by_a_positive_amount() -> None:
    g = Guards()
    with pytest.raises(InvalidInput, match="positive"):
        g.limits.raise_budget("run-1", 0)
    assert g.limits.raise_budget("run-1", 2.5).raised_usd == 2.5
