"""Budgets belong to the run tree: a parent and the sub-agents it invokes (and theirs) spend
from the root's call cap and cost cap, a sub-budget only narrows it, one `tether budget raise
ROOT` wakes a paused tree, and no call is counted or made twice. On SQLite, on PostgreSQL (the
counters then stay in the data directory's SQLite) and with the counters in Redis."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rich.console import Console

from tests.fakes.guard_servers import REDIS, redis_prefix
from tests.fakes.openai_server import OpenAIServer
from tests.receipts.conftest import on_openai
from tether import RunStatus, Tether
from tether.cli.views import print_inspect
from tether.errors import InvalidInput
from tether.foundation.checkpoint.contract import EntryKind, EntryStatus, RunFilter, RunRecord
from tether.foundation.limits.contract import Budget


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def tree_tether(
    request: pytest.FixtureRequest, agent_tether: Callable[..., Tether]
) -> Iterator[Callable[..., Tether]]:
    """`agent_tether` with the runs on SQLite or PostgreSQL, or the limits in Redis."""
    if request.param == "sqlite":
        yield agent_tether
    elif request.param == "postgres":
        from tests.postgres.server import fresh_schema

        with fresh_schema("tree") as (url, schema):
            yield lambda **kw: agent_tether(
                checkpoint="postgres", checkpoint_database_url=url, checkpoint_schema=schema, **kw
            )
    else:
        with redis_prefix() as prefix:

            def make(limits: dict[str, Any] | None = None, **kw: Any) -> Tether:
                redis = {"backend": "redis", "options": {"url": REDIS, "prefix": prefix}}
                return agent_tether(limits={**redis, **(limits or {})}, **kw)

            yield make


def _tree(t: Tether, root: str) -> list[RunRecord]:
    runs, pending = [], [root]
    while pending:
        run = t.status(pending.pop())
        runs.append(run)
        pending += [c.id for c in t.checkpointer.list_runs(RunFilter(parent_id=run.id, limit=100))]
    return runs


def _model_calls(t: Tether, root: str, status: EntryStatus) -> int:
    return sum(
        1
        for run in _tree(t, root)
        for e in t.journal(run.id)
        if e.kind is EntryKind.MODEL and e.status is status
    )


def test_a_tree_of_four_runs_stops_at_call_6_naming_its_root(
    tree_tether: Callable[..., Tether],
) -> None:
    t = tree_tether(limits={"model_call_cap": 5})
    root = t.start("team", {"members": 3, "calls": 5})  # 1 + 3 x 5 = 16 calls uncapped
    run = t.run(root)
    assert run.status is RunStatus.FAILED
    assert _model_calls(t, root, EntryStatus.OK) == 5
    assert _model_calls(t, root, EntryStatus.ERROR) == 1  # call 6, refused before dispatch
    refused = next(r for r in _tree(t, root) if r.status is RunStatus.FAILED and r.id != root)
    error = json.loads(refused.error or "{}")
    assert error["type"] == "BudgetExceeded" and f"run tree of {root}" in error["message"]
    assert root in json.loads(run.error or "{}")["message"]
    tree = t.inspect(root).tree
    assert tree is not None and tree.calls == 5
    console = Console(record=True, width=200)
    print_inspect(t, t.inspect(refused.id), console)
    shown = console.export_text()
    assert f"budget the tree of {root}: 5 model calls" in shown
    assert "this run's own: 4 calls" in shown


def test_grandchildren_spend_from_the_root_too(tree_tether: Callable[..., Tether]) -> None:
    t = tree_tether(limits={"model_call_cap": 7})
    root = t.start("team", {"members": 2, "calls": 2, "depth": 1})  # 1 + 2 x (1 + 2 x 2) = 11
    assert t.run(root).status is RunStatus.FAILED
    assert _model_calls(t, root, EntryStatus.OK) == 7
    grandchildren = [r for r in _tree(t, root) if r.parent_id not in (None, root)]
    assert grandchildren and all(r.meta["root_id"] == root for r in grandchildren)


def test_without_a_cap_the_same_tree_completes_its_16_calls(
    tree_tether: Callable[..., Tether],
) -> None:
    t = tree_tether()
    root = t.start("team", {"members": 3, "calls": 5})
    assert t.run(root).status is RunStatus.COMPLETED
    assert _model_calls(t, root, EntryStatus.OK) == 16
    view = t.inspect(root)
    assert view.tree is not None and view.tree.calls == 16 and view.root_id == root


def test_a_sub_budget_stops_its_member_within_the_roots_cap(
    tree_tether: Callable[..., Tether],
) -> None:
    t = tree_tether(limits={"model_call_cap": 50})
    root = t.start("team", {"members": 3, "calls": 5, "member_cap": 2})
    assert t.run(root).status is RunStatus.FAILED
    assert _model_calls(t, root, EntryStatus.OK) == 3  # the plan, then member 0's two calls
    member = next(r for r in _tree(t, root) if r.id != root)
    error = json.loads(member.error or "{}")
    assert error["type"] == "BudgetExceeded" and "sub-budget" in error["message"]


def test_a_sub_budget_larger_than_the_one_above_it_is_refused(
    agent_tether: Callable[..., Tether],
) -> None:
    t = agent_tether()
    nested = {"members": 1, "calls": 1, "depth": 1, "member_cap": 2}
    fine = t.start("team", {**nested, "inner_cap": 1})
    assert t.run(fine).status is RunStatus.COMPLETED
    wider = t.start("team", {**nested, "inner_cap": 3})
    assert t.run(wider).status is RunStatus.FAILED
    team = next(r for r in _tree(t, wider) if r.parent_id == wider)
    error = json.loads(team.error or "{}")
    assert error["type"] == "InvalidInput" and "may only be smaller" in error["message"]
    with pytest.raises(ValueError):
        Budget(cost_cap_usd=float("nan"))


def test_pause_mode_pauses_the_whole_tree_and_one_raise_resumes_it_without_repeating_a_call(
    tree_tether: Callable[..., Tether], openai_srv: OpenAIServer
) -> None:
    t = tree_tether(limits={"cost_cap_usd": 1e-9, "on_cost_cap": "pause"}, **on_openai(openai_srv))
    root = t.start("team", {"members": 3, "calls": 5})
    first = t.run(root)
    assert first.status is RunStatus.WAITING  # on its member, which is paused
    assert len(openai_srv.requests) == 1  # the plan spent past the cap; member 0's call waits
    assert [r.status for r in _tree(t, root)][1:] == [RunStatus.PAUSED]
    t.raise_budget(root, usd=1.0)
    done = t.run(root)
    assert done.status is RunStatus.COMPLETED, done.error
    assert len(openai_srv.requests) == 16  # no call was made twice
    assert sum(t.foundations.cost.run_total(r.id).calls for r in _tree(t, root)) == 16
    tree = t.inspect(root).tree
    assert tree is not None and tree.calls == 16 and tree.raised_usd == 1.0


def test_raising_a_budget_by_nan_or_infinity_is_refused(
    agent_tether: Callable[..., Tether],
) -> None:
    t = agent_tether()
    root = t.start("chatty", {"calls": 1})
    for bad in (float("nan"), float("inf"), -1.0, 0.0):
        with pytest.raises(InvalidInput, match="finite positive"):
            t.raise_budget(root, usd=bad)
    assert t.foundations.limits.store.budget(root).raised_usd == 0.0
