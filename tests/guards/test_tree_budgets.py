"""I10 over a run tree: every call spends from its root's budget and from each sub-budget above
it, once per call however often it is re-executed, and a retried model call is a call again."""

from __future__ import annotations

import pytest

from tether.errors import BudgetExceeded
from tether.foundation.guards.contract import CallOutcome, GuardedCall, SubBudget
from tether.foundation.limits.config import LimitsConfig
from tether.foundation.limits.guard import LimitsGuard
from tether.foundation.limits.memory import MemoryLimitsStore


def _call(run: str, step: str, attempt: int = 1, **extra: object) -> GuardedCall:
    return GuardedCall.model_validate(
        {
            "run_id": run,
            "workflow": "member@1.0.0",
            "step_id": step,
            "kind": "model",
            "target": "agent",
            "arguments": {"step": step, "run": run},
            "root_run_id": "root",
            "root_workflow": "lead@1.0.0",
            "attempt": attempt,
            **extra,
        }
    )


def test_calls_of_every_run_in_a_tree_count_against_the_roots_cap_once_each() -> None:
    guard = LimitsGuard(
        MemoryLimitsStore(),
        LimitsConfig(model_call_cap=50, workflows={"lead": {"model_call_cap": 3}}),
    )
    guard.before(_call("root", "1"))
    guard.before(_call("child", "1"))
    guard.before(_call("child", "1"))  # re-executed after a crash: judged as before
    guard.before(_call("grandchild", "1"))
    assert guard.store.budget("root").calls == 3
    with pytest.raises(BudgetExceeded, match="run tree of root"):
        guard.before(_call("grandchild", "1", attempt=2))  # a retry is paid again


def test_a_sub_budget_caps_its_subtree_and_cost_reaches_every_budget_above() -> None:
    guard = LimitsGuard(MemoryLimitsStore(), LimitsConfig(cost_cap_usd=None))
    sub = (SubBudget(run_id="child", model_call_cap=1, cost_cap_usd=0.5),)
    first = _call("grandchild", "1", sub_budgets=sub)
    guard.before(first)
    guard.after(first, CallOutcome(ok=True, cost_usd=0.75))
    assert guard.store.budget("child").spent_usd == guard.store.budget("root").spent_usd == 0.75
    with pytest.raises(BudgetExceeded, match="sub-budget"):
        guard.before(_call("grandchild", "2", sub_budgets=sub))
    guard.before(_call("sibling", "1"))  # outside the sub-budget: only the root's cap applies


def test_a_childs_own_workflow_budget_still_holds_inside_the_tree() -> None:
    config = LimitsConfig(model_call_cap=50, workflows={"member": {"model_call_cap": 1}})
    guard = LimitsGuard(MemoryLimitsStore(), config)
    guard.before(_call("child", "1"))
    with pytest.raises(BudgetExceeded, match="'s own budget, in the tree of root"):
        guard.before(_call("child", "2"))
    guard.before(_call("other_child", "1"))  # its own budget is its own
    assert guard.store.budget("root").calls == 2
