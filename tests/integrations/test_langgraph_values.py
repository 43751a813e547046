"""A long conversation's checkpoints stop growing with each copy of its message list: on
TetherSaver a 200-turn chat takes at most twice the bytes of its final message list, where
LangGraph's savers keep the whole list in each of its 600 checkpoints. It holds for long answers
(about 2.5 KB, with their ids as chat models return them), for 1 KB answers, for answers
written without an id (LangGraph's reducer gives them one after the node wrote them), and for
300 B turns (1.98x), where LangGraph's own bookkeeping, three checkpoints and three writes a
turn, weighs nearly as much as the messages. Stored bytes are measured in I2's SQLite tables,
every column of every thread row and blob counted."""

from __future__ import annotations

import sqlite3
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph import END, START, MessagesState, StateGraph

from tests.conftest import FAST
from tether import Settings, Tether
from tether.foundation.checkpoint.contract import ThreadBlob, ThreadCheckpoint
from tether.integrations.langgraph import TetherSaver, values

TURNS = 200
_ROW = "coalesce(length({}), 0)"
COLUMNS = {
    "thread_checkpoints": ["thread_id", "ns", "checkpoint_id", "parent_id", "graph", "type",
                           "checkpoint", "metadata", "refs"],
    "thread_writes": ["thread_id", "ns", "checkpoint_id", "task_id", "channel", "type", "value",
                      "task_path", "refs"],
    "thread_blobs": ["hash", "type", "value", "refs"],
}  # fmt: skip


@dataclass(frozen=True)
class Chat:
    question: int  # bytes of a question's text, about
    answer: int  # and of an answer's
    ids: bool  # whether the node gives its answer an id, as chat models do

    def ask(self, turn: int) -> HumanMessage:
        return HumanMessage(
            content=_text(f"question {turn}: ", "why does it resume? ", self.question)
        )

    def agent(self, state: MessagesState) -> dict[str, Any]:
        answer = _text(f"answer {len(state['messages'])}: ", "the journal keeps it; ", self.answer)
        ai = AIMessage(content=answer, id=f"run-{uuid.uuid4()}" if self.ids else None)
        return {"messages": [ai]}


def _text(head: str, phrase: str, size: int) -> str:
    return head + phrase * ((size - len(head)) // len(phrase))


CHATS = {
    "2.5 KB answers with ids": Chat(question=300, answer=2500, ids=True),
    "1 KB answers, 200 B questions": Chat(question=200, answer=1000, ids=True),
    "300 B questions and answers": Chat(question=300, answer=300, ids=True),
    "answers without ids": Chat(question=300, answer=1000, ids=False),
    "300 B turns without ids": Chat(question=300, answer=300, ids=False),
    "2.5 KB answers without ids": Chat(question=300, answer=2500, ids=False),
}
# where 2x holds: every shape (with 300 B turns LangGraph's own rows, three checkpoints and
# three writes a turn, take about 1,000 bytes a turn beside the messages; 2x leaves 1,020)
HOLDS = list(CHATS)


def _stored(db: sqlite3.Connection) -> dict[str, int]:
    sizes = {}
    for table, columns in COLUMNS.items():
        total = " + ".join(_ROW.format(c) for c in columns)
        ints = 8 if table == "thread_writes" else 0  # its idx
        sizes[table] = db.execute(f"SELECT sum({total} + {ints}) FROM {table}").fetchone()[0]
    return sizes


Conversation = Callable[[Chat], tuple[Path, list[Any]]]


@pytest.fixture(scope="module")
def converse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Conversation]:
    """200 turns on TetherSaver over SQLite: the database and the final message list, checked to
    read back whole. Each shape is talked through once for the module, whose two receipts
    measure the same database."""
    held: dict[Chat, tuple[Path, list[Any]]] = {}
    opened: list[Tether] = []

    def run(chat: Chat) -> tuple[Path, list[Any]]:
        if chat not in held:
            data = tmp_path_factory.mktemp("chat") / ".tether"
            t = Tether(Settings(data_dir=data, trace="memory", workflows=[], **FAST))
            opened.append(t)
            held[chat] = _converse(t, chat)
        return held[chat]

    yield run
    for t in opened:
        t.close()


def _converse(t: Tether, chat: Chat) -> tuple[Path, list[Any]]:
    saver = TetherSaver(t, graph="chat@1.0.0")
    graph = StateGraph(MessagesState)
    graph.add_node("agent", chat.agent)
    graph.add_edge(START, "agent")
    graph.add_edge("agent", END)
    app = graph.compile(checkpointer=saver)
    config: Any = {"configurable": {"thread_id": "long-chat"}}
    for turn in range(TURNS):
        out = app.invoke({"messages": [chat.ask(turn)]}, config)
    messages = out["messages"]
    assert len(messages) == 2 * TURNS
    assert saver.get_tuple(config).checkpoint["channel_values"]["messages"] == messages
    return t.settings.data_path / "tether.db", messages


@pytest.mark.parametrize("chat", [CHATS[k] for k in HOLDS], ids=HOLDS)
def test_a_200_turn_conversation_takes_at_most_twice_its_final_message_list(
    converse: Conversation, chat: Chat
) -> None:
    path, messages = converse(chat)
    final = _size(messages)
    # what a saver copying the list into each checkpoint holds: each turn checkpoints the list
    # as it came in, with the question, and with the answer
    size = [_size(messages[:n]) for n in range(2 * TURNS + 1)]
    every_copy = sum(size[2 * k] + size[2 * k + 1] + size[2 * k + 2] for k in range(TURNS))
    with sqlite3.connect(path) as db:
        sizes = _stored(db)
    stored = sum(sizes.values())
    print(
        f"\n{TURNS} turns: final message list {final:,} B; stored {stored:,} B "
        f"({stored / final:.2f}x: {sizes}); the list copied into each checkpoint would take "
        f"about {every_copy:,} B"
    )
    assert stored <= 2 * final, f"{stored:,} B stored for a {final:,} B message list"


@pytest.mark.parametrize("chat", CHATS.values(), ids=CHATS.keys())
def test_each_message_is_stored_once_whatever_its_size_or_id(
    converse: Conversation, chat: Chat
) -> None:
    """The messages' own bytes in the blobs are at most the final list's: a message the node
    wrote without an id and the reducer's copy with one are one body (its id is stored beside
    it, so a body is smaller than the message)."""
    path, messages = converse(chat)
    final = _size(messages)
    with sqlite3.connect(path) as db:
        bodies = db.execute(
            "SELECT sum(length(value)) FROM thread_blobs WHERE type NOT LIKE '~%'"
        ).fetchone()[0]
        sizes = _stored(db)
    stored = sum(sizes.values())
    print(
        f"\n{TURNS} turns: final message list {final:,} B; message bodies {bodies:,} B; stored "
        f"{stored:,} B in all ({stored / final:.2f}x: {sizes})"
    )
    assert bodies <= final, f"{bodies:,} B of message bodies for a {final:,} B message list"


def _size(messages: list[Any]) -> int:
    return len(JsonPlusSerializer().dumps_typed(messages)[1])


def test_a_short_write_stays_in_its_row_and_a_long_one_is_a_blob(
    make_tether: Callable[..., Tether],
) -> None:
    """A task's result or a branch marker is shorter than the hash that would share it: it is
    kept in the write's row, so the write is one statement and no blob."""
    t = make_tether("memory")
    saver = TetherSaver(t, graph="chat@1.0.0")
    config = saver.put(
        {"configurable": {"thread_id": "t", "checkpoint_ns": ""}},
        {**empty_checkpoint(), "id": "1f0"},
        {"source": "input", "step": -1},
        {},
    )
    long = "a result longer than a write row keeps in itself; " * 3
    saver.put_writes(config, [("short", 41), ("none", None), ("long", long)], "task-1")

    rows = {w.channel: w for w in t.checkpointer.thread_writes("t", "", "1f0")}
    assert {ch: (w.type, w.refs) for ch, w in rows.items() if ch != "long"} == {
        "short": ("msgpack", ()),
        "none": ("null", ()),
    }
    assert rows["long"].type == "ref" and rows["long"].value == b""
    assert [b.value for b in t.checkpointer.thread_blobs(rows["long"].refs).values()] == [
        saver.serde.dumps_typed(long)[1]
    ]
    assert saver.get_tuple(config).pending_writes == [
        ("task-1", "short", 41), ("task-1", "none", None), ("task-1", "long", long)
    ]  # fmt: skip


def test_a_saver_remembers_split_messages_up_to_a_bound_of_bytes(
    make_tether: Callable[..., Tether], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The messages a saver remembers split (to pack a conversation's list again without
    copying each message) are bounded in bytes, the oldest forgotten first; a forgotten message
    packs to the same hash."""
    monkeypatch.setattr(values, "_MESSAGE_BYTES", 10_000)
    saver = TetherSaver(make_tether("memory"), graph="chat@1.0.0")
    messages = [AIMessage(content=f"{i}: " + "x" * 1000, id=f"run-{i}") for i in range(50)]
    first = saver.values.pack(messages, {})

    remembered = saver.values._messages
    assert 0 < len(remembered) < 10
    assert list(remembered) == [saver.serde.dumps_typed(m) for m in messages[-len(remembered) :]]
    assert saver.values._message_bytes == sum(
        len(data) + len(body.value) for (_, data), (body, _) in remembered.items()
    )
    assert saver.values._message_bytes <= 10_000
    assert saver.values.pack(messages, {}) == first


def test_a_checkpoint_stored_before_packing_reads_back(
    make_tether: Callable[..., Tether],
) -> None:
    """A checkpoint written as `zrefs+` (metadata in its row, channel values by hash in a body
    compressed against the old dictionary) reads back as it was put."""
    t = make_tether("sqlite")
    saver = TetherSaver(t, graph="chat@1.0.0")
    blobs: dict[str, ThreadBlob] = {}
    messages = [HumanMessage(content="hi", id="1"), AIMessage(content="hello", id="2")]
    checkpoint = {**empty_checkpoint(), "id": "1f0", "channel_versions": {"messages": 1}}
    refs = {"messages": saver.values.pack(messages, blobs)}
    type_, body = saver.serde.dumps_typed({**checkpoint, "channel_values": refs})
    packer = zlib.compressobj(9, zdict=values._ZDICT)
    t.checkpointer.put_thread_checkpoint(
        ThreadCheckpoint("t", "", "1f0", None, "chat@1.0.0", values.ZREFS + type_,
                         packer.compress(body) + packer.flush(), '{"step": 3}',
                         tuple(refs.values())),
        list(blobs.values()),
    )  # fmt: skip

    got = saver.get_tuple({"configurable": {"thread_id": "t", "checkpoint_ns": ""}})
    assert got is not None and got.metadata == {"step": 3}
    assert got.checkpoint == {**checkpoint, "channel_values": {"messages": messages}}
