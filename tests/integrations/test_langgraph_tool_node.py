"""tether_tool_node sends each tool call through I1: the run id is the thread, the step id comes
from the super-step and the tool call id, so a node re-run from the same checkpoint meets its
calls in `tool_call_results`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, ToolMessage

from tests.integrations.graphs import graph_lookup, graph_send_email
from tether import Tether
from tether.errors import PolicyDenied, UnsafeReplayError
from tether.foundation.tools.contract import ToolInvocation
from tether.foundation.tools.results import CallStatus, ToolCallRecord
from tether.integrations.langgraph import tether_tool_node
from tether.integrations.langgraph.tool_node import step_id

CONFIG: Any = {"configurable": {"thread_id": "t1", "checkpoint_ns": "tools:abc"},
               "metadata": {"langgraph_step": 2}}  # fmt: skip


def calls(*calls: tuple[str, dict[str, Any], str]) -> dict[str, Any]:
    tool_calls = [{"name": n, "args": a, "id": i, "type": "tool_call"} for n, a, i in calls]
    return {"messages": [AIMessage(content="", tool_calls=tool_calls)]}


def test_a_pure_call_rerun_from_the_same_checkpoint_comes_from_the_ledger(
    make_tether: Callable[..., Tether], tmp_path: Path
) -> None:
    t = make_tether()
    node = tether_tool_node([graph_lookup], t)
    marker = tmp_path / "marker"
    state = calls(("graph_lookup", {"marker": str(marker), "key": "abc"}, "call_1"))
    first = node.invoke(state, CONFIG)["messages"]
    again = node.invoke(state, CONFIG)["messages"]
    assert [m.content for m in first] == [m.content for m in again] == ["ABC"]
    assert isinstance(first[0], ToolMessage) and first[0].tool_call_id == "call_1"
    assert marker.read_text() == "abc\n"  # the tool ran once
    row = t.foundations.tools.lookup("t1", step_id(CONFIG, "call_1"))
    assert row is not None and row.status is CallStatus.FINISHED


def test_the_node_answers_asynchronously_too(
    make_tether: Callable[..., Tether], tmp_path: Path
) -> None:
    node = tether_tool_node([graph_lookup], make_tether())
    state = calls(("graph_lookup", {"marker": str(tmp_path / "m"), "key": "x"}, "c1"),
                  ("nope", {}, "c2"))  # fmt: skip
    out = asyncio.run(node.ainvoke(state, CONFIG))["messages"]
    assert (out[0].content, out[0].status) == ("X", "success")
    assert out[1].status == "error" and "not a valid tool" in out[1].content


def test_an_interrupted_unsafe_call_is_not_sent_again(
    make_tether: Callable[..., Tether], tmp_path: Path
) -> None:
    t = make_tether()
    outbox = tmp_path / "outbox"
    args = {"outbox": str(outbox), "hang": str(tmp_path / "hang"), "to": "a@b", "body": "hi"}
    # What a worker killed mid-call leaves: the intent committed, no result.
    invocation = ToolInvocation("t1", step_id(CONFIG, "call_1"), 1, graph_send_email, args)
    t.foundations.tools.store.begin(
        ToolCallRecord(
            run_id="t1",
            step_id=invocation.step_id,
            attempt=1,
            tool="graph_send_email",
            args=args,
            args_hash=_hash(args),
            status=CallStatus.STARTED,
            started_at=0.0,
            idempotency_key=None,
        )
    )
    with pytest.raises(UnsafeReplayError) as err:
        tether_tool_node([graph_send_email], t).invoke(
            calls(("graph_send_email", args, "call_1")), CONFIG
        )
    assert err.value.evidence["step_id"] == invocation.step_id
    assert not outbox.exists()


def test_the_step_id_is_the_same_for_every_task_attempt_of_the_node() -> None:
    other_task: Any = {**CONFIG, "configurable": {"thread_id": "t1", "checkpoint_ns": "tools:zz"}}
    assert step_id(CONFIG, "c") == step_id(other_task, "c") == "langgraph//2/c"
    nested: Any = {**CONFIG, "configurable": {"checkpoint_ns": "outer:1|tools:2"}}
    assert step_id(nested, "c") == "langgraph/outer/2/c"


def _hash(args: dict[str, Any]) -> str:
    from tether.foundation.tools.runner import args_hash

    return args_hash(graph_send_email.validate_args(args))


def test_the_guards_judge_a_call_before_it_runs_but_not_its_replay(
    make_tether: Callable[..., Tether], tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    state = calls(("graph_lookup", {"marker": str(marker), "key": "abc"}, "call_1"))
    tether_tool_node([graph_lookup], make_tether()).invoke(state, CONFIG)  # allowed, in the ledger
    denying = make_tether(policy={"default": "deny"})
    node = tether_tool_node([graph_lookup], denying, graph="agent@1.0.0")
    assert node.invoke(state, CONFIG)["messages"][0].content == "ABC"  # a replay: no guard
    fresh = calls(("graph_lookup", {"marker": str(marker), "key": "new"}, "call_2"))
    with pytest.raises(PolicyDenied):
        node.invoke(fresh, CONFIG)
    assert marker.read_text() == "abc\n"
