"""A long conversation's checkpoints stop growing with each copy of its message list: on
TetherSaver a 200-turn chat (answers of about 2.5 KB with their ids, as chat models return
them, questions of about 300 bytes) takes at most twice the bytes of its final message list, where
LangGraph's savers keep the whole list in each of its 600 checkpoints. Stored bytes are
measured in I2's SQLite tables, every column of every thread row and blob counted."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.graph import END, START, MessagesState, StateGraph

from tether import Tether
from tether.integrations.langgraph import TetherSaver

TURNS = 200
_ROW = "coalesce(length({}), 0)"
COLUMNS = {
    "thread_checkpoints": ["thread_id", "ns", "checkpoint_id", "parent_id", "graph", "type",
                           "checkpoint", "metadata", "refs"],
    "thread_writes": ["thread_id", "ns", "checkpoint_id", "task_id", "channel", "type", "value",
                      "task_path", "refs"],
    "thread_blobs": ["hash", "type", "value", "refs"],
}  # fmt: skip


def _agent(state: MessagesState) -> dict[str, Any]:
    n = len(state["messages"])
    answer = f"answer {n}: " + "the journal keeps every step's result; " * 64
    return {"messages": [AIMessage(content=answer, id=f"run-{uuid.uuid4()}")]}


def _stored(db: sqlite3.Connection) -> dict[str, int]:
    sizes = {}
    for table, columns in COLUMNS.items():
        total = " + ".join(_ROW.format(c) for c in columns)
        ints = 8 if table == "thread_writes" else 0  # its idx
        sizes[table] = db.execute(f"SELECT sum({total} + {ints}) FROM {table}").fetchone()[0]
    return sizes


def test_a_200_turn_conversation_takes_at_most_twice_its_final_message_list(
    make_tether: Callable[..., Tether],
) -> None:
    t = make_tether("sqlite")
    saver = TetherSaver(t, graph="chat@1.0.0")
    graph = StateGraph(MessagesState)
    graph.add_node("agent", _agent)
    graph.add_edge(START, "agent")
    graph.add_edge("agent", END)
    chat = graph.compile(checkpointer=saver)
    config: Any = {"configurable": {"thread_id": "long-chat"}}
    for turn in range(TURNS):
        question = f"question {turn}: " + "why does it resume? " * 14
        out = chat.invoke({"messages": [HumanMessage(content=question)]}, config)

    messages = out["messages"]
    assert len(messages) == 2 * TURNS
    final = len(saver.serde.dumps_typed(messages)[1])
    # what a saver copying the list into each checkpoint holds: each turn checkpoints the list
    # as it came in, with the question, and with the answer
    size = [len(saver.serde.dumps_typed(messages[:n])[1]) for n in range(2 * TURNS + 1)]
    every_copy = sum(size[2 * k] + size[2 * k + 1] + size[2 * k + 2] for k in range(TURNS))
    with sqlite3.connect(t.settings.data_path / "tether.db") as db:
        sizes = _stored(db)
        checkpoints = db.execute("SELECT count(*) FROM thread_checkpoints").fetchone()[0]
    stored = sum(sizes.values())
    print(
        f"\n{TURNS} turns, {checkpoints} checkpoints: final message list {final:,} B; stored "
        f"{stored:,} B ({stored / final:.2f}x: {sizes}); the list copied into each checkpoint "
        f"would take about {every_copy:,} B"
    )
    assert stored <= 2 * final, f"{stored:,} B stored for a {final:,} B message list"
    # and the thread reads back whole
    assert saver.get_tuple(config).checkpoint["channel_values"]["messages"] == messages
