"""`tether prune` covers LangGraph threads: each keeps its newest checkpoints, and the thread
blobs (messages) that only the pruned checkpoints, or a deleted thread, held are swept; a
message the kept checkpoints still list stays, and the thread goes on."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.graph import END, START, MessagesState, StateGraph

from tether import Tether
from tether.integrations.langgraph import TetherSaver


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def tether(request: pytest.FixtureRequest, make_tether: Callable[..., Tether]) -> Iterator[Tether]:
    if request.param != "postgres":
        yield make_tether(request.param)
        return
    from tests.postgres.server import fresh_schema

    with fresh_schema("lgp") as (url, schema):
        yield make_tether("postgres", checkpoint_database_url=url, checkpoint_schema=schema)


def _chat(saver: TetherSaver) -> Any:
    def agent(state: MessagesState) -> dict[str, Any]:
        said = f"answer to {state['messages'][-1].content}"
        return {"messages": [AIMessage(content=said, id=f"run-{uuid.uuid4()}")]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_edge(START, "agent")
    graph.add_edge("agent", END)
    return graph.compile(checkpointer=saver)


def _talk(chat: Any, thread: str, turns: int) -> Any:
    config = {"configurable": {"thread_id": thread}}
    for n in range(turns):
        out = chat.invoke({"messages": [HumanMessage(content=f"{thread} question {n}")]}, config)
    return out


def test_prune_keeps_each_threads_newest_checkpoints_and_sweeps_what_only_old_ones_held(
    tether: Tether,
) -> None:
    saver = TetherSaver(tether, graph="chat@1.0.0")
    chat = _chat(saver)
    long = _talk(chat, "long", 10)["messages"]  # 30 checkpoints
    gone = _talk(chat, "gone", 2)["messages"]
    saver.delete_thread("gone")
    store = saver.store

    def stored(value: Any) -> bool:
        h = saver.values.pack(value, {})
        return h in store.thread_blobs([h])

    # turn 2's list, as its checkpoint stored it (a shorter one is kept in its checkpoint's row)
    turn_2 = long[:6]
    assert stored(turn_2) and all(stored(m) for m in gone)

    report = tether.prune(finished_before=0.0, keep_thread_checkpoints=4)
    print(report)
    assert report.thread_checkpoints == 26 and report.thread_writes > 0
    assert report.thread_blobs > len(gone)
    assert len(list(saver.list({"configurable": {"thread_id": "long"}}))) == 4
    assert not stored(turn_2)  # only the pruned checkpoints held it
    assert not any(stored(m) for m in gone)  # the deleted thread's messages
    assert all(stored(m) for m in long)  # the kept checkpoints still list every message

    again = _talk(chat, "long", 1)["messages"]  # the thread goes on from its newest checkpoint
    assert again[:20] == long and len(again) == 22
    nothing = tether.prune(finished_before=0.0, keep_thread_checkpoints=40)
    assert (nothing.thread_checkpoints, nothing.thread_blobs) == (0, 0)
