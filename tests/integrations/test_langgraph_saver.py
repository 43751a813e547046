"""TetherSaver behaves as LangGraph's own SqliteSaver: one table of saver operations (put,
put_writes with plain and special channels, get_tuple, list with each filter, before and limit,
namespaces, delete_thread) runs against both, over every I2 backend, and the answers compare
equal. Then the version pin: a thread written by graph 1.0.0 is refused by 2.0.0 and resumed by
1.1.0 declaring `resumes=["1.0.*"]`."""

from __future__ import annotations

import asyncio
import operator
import sqlite3
from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple, empty_checkpoint
from langgraph.checkpoint.base.id import uuid6
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import START, StateGraph
from langgraph.types import Command, interrupt

from tests.integrations.graphs import build, first_input, graph_send_email
from tether import Tether
from tether.errors import GraphVersionMismatch
from tether.integrations.langgraph import TetherSaver, tether_tool_node

ERROR = "__error__"  # a special channel (WRITES_IDX_MAP): its write replaces
IDS = [str(uuid6(clock_seq=i)) for i in range(6)]


def cfg(thread: str, ns: str = "", checkpoint: str | None = None) -> Any:
    conf: dict[str, Any] = {"thread_id": thread, "checkpoint_ns": ns}
    if checkpoint is not None:
        conf["checkpoint_id"] = checkpoint
    return {"configurable": conf}


def checkpoint(i: int, **values: Any) -> Any:
    ts = f"2026-01-01T00:00:0{i}+00:00"
    return {**empty_checkpoint(), "id": IDS[i], "ts": ts, "channel_values": values}


def plain(t: CheckpointTuple | None) -> Any:
    if t is None:
        return None
    return (t.config, t.checkpoint, t.metadata, t.parent_config, t.pending_writes)


def operations(saver: BaseCheckpointSaver[Any]) -> list[Any]:
    """Every answer the saver gives along the table, in order."""
    seen: list[Any] = []

    def listed(config: Any, **kw: Any) -> None:
        seen.append([plain(t) for t in saver.list(config, **kw)])

    c0 = saver.put(cfg("t1"), checkpoint(0, a=1), {"source": "input", "step": -1}, {})
    c1 = saver.put(c0, checkpoint(1, a=2), {"source": "loop", "step": 0, "user": "ana"}, {})
    c2 = saver.put(c1, checkpoint(2, a=3, m=["x"] * 3), {"source": "loop", "step": 1}, {})
    saver.put(cfg("t1", "child:abc"), checkpoint(3, b=1), {"source": "loop", "step": 0}, {})
    saver.put(cfg("t2"), checkpoint(4, c=1), {"source": "input", "step": -1, "user": "ana"}, {})
    seen += [c0, c1, c2]
    long = "a result longer than a write row keeps in itself; " * 3
    saver.put_writes(c1, [("a", 10), ("b", {"k": [1, 2]}), ("c", long)], "task-b", "path")
    saver.put_writes(c1, [("a", 99)], "task-b")  # a plain write again: the first one stays
    saver.put_writes(c1, [("z", 1)], "task-a")
    saver.put_writes(c1, [(ERROR, "boom")], "task-c")
    saver.put_writes(c1, [(ERROR, "bang")], "task-c")  # a special write again: replaced
    seen.append(plain(saver.get_tuple(cfg("t1"))))
    seen.append(plain(saver.get_tuple(cfg("t1", checkpoint=IDS[1]))))
    seen.append(plain(saver.get_tuple(cfg("t1", "child:abc"))))
    seen.append(plain(saver.get_tuple(cfg("t3"))))
    seen.append(plain(saver.get_tuple(cfg("t1", checkpoint=IDS[5]))))
    listed(None)
    listed(cfg("t1"))
    listed({"configurable": {"thread_id": "t1"}})
    listed(cfg("t1", "child:abc"))
    listed(None, filter={"source": "loop"})
    listed(None, filter={"user": "ana"})
    listed(None, filter={"source": "loop", "step": 1})
    listed(cfg("t1"), before=cfg("t1", checkpoint=IDS[2]))
    listed(None, limit=2)
    listed(None, filter={"source": "loop"}, limit=1)
    listed(cfg("t1", checkpoint=IDS[0]))
    saver.delete_thread("t1")
    listed(None)
    seen.append(plain(saver.get_tuple(cfg("t1"))))
    return seen


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def tether(request: pytest.FixtureRequest, make_tether: Callable[..., Tether]) -> Iterator[Tether]:
    if request.param != "postgres":
        yield make_tether(request.param)
        return
    from tests.postgres.server import fresh_schema

    with fresh_schema("lg") as (url, schema):
        yield make_tether("postgres", checkpoint_database_url=url, checkpoint_schema=schema)


def test_the_saver_answers_as_sqlitesaver_does_on_every_operation(tether: Tether) -> None:
    theirs = operations(SqliteSaver(sqlite3.connect(":memory:", check_same_thread=False)))
    ours = operations(TetherSaver(tether, graph="g@1.0.0"))
    assert len(ours) == len(theirs)
    for i, (mine, expected) in enumerate(zip(ours, theirs, strict=True)):
        assert mine == expected, f"answer {i} differs"


def test_the_async_saver_answers_as_the_sync_one(tether: Tether) -> None:
    saver = TetherSaver(tether, graph="g@1.0.0")
    ours = operations(saver)  # leaves only t2

    async def read() -> Any:
        return (
            plain(await saver.aget_tuple(cfg("t2"))),
            [plain(t) async for t in saver.alist(None)],
        )

    got, listed = asyncio.run(read())
    assert listed == ours[-2] and got == listed[0]


def test_a_thread_is_pinned_to_its_graph_version(tether: Tether, tmp_path: Any) -> None:
    config: Any = {"configurable": {"thread_id": "t1"}}
    start = first_input(str(tmp_path / "outbox"), str(tmp_path / "hang"))

    def graph(version: str, resumes: list[str] | None = None) -> Any:
        saver = TetherSaver(tether, graph=f"mailer@{version}", resumes=resumes or [])
        return build(saver, tether_tool_node([graph_send_email], tether))

    graph("1.0.0").invoke(start, config, interrupt_before=["tools"])
    with pytest.raises(GraphVersionMismatch, match=r"pinned to graph mailer@1\.0\.0"):
        graph("2.0.0").invoke(None, config)
    with pytest.raises(GraphVersionMismatch):
        graph("1.1.0").invoke(None, config)  # 1.1.0 does not say it resumes 1.0.0
    out = graph("1.1.0", resumes=["1.0.*"]).invoke(None, config)
    assert out["messages"][-1].content == "done"
    assert (tmp_path / "outbox").read_text().count("ana@example.com") == 1


class Counter(TypedDict):
    items: Annotated[list[str], operator.add]


def nested_graph(checkpointer: Any) -> Any:
    """A parent whose middle node is a compiled subgraph (its own checkpoint namespace) and whose
    last node waits for a person (an interrupt), as LangGraph's own saver tests exercise."""
    inner = StateGraph(Counter)
    inner.add_node("inner_a", lambda s: {"items": ["inner_a"]})
    inner.add_node("inner_b", lambda s: {"items": ["inner_b"]})
    inner.add_edge(START, "inner_a")
    inner.add_edge("inner_a", "inner_b")

    def ask(state: Counter) -> dict[str, Any]:
        return {"items": [f"answer:{interrupt('go on?')}"]}

    outer = StateGraph(Counter)
    outer.add_node("first", lambda s: {"items": ["first"]})
    outer.add_node("sub", inner.compile())
    outer.add_node("ask", ask)
    outer.add_edge(START, "first")
    outer.add_edge("first", "sub")
    outer.add_edge("sub", "ask")
    return outer.compile(checkpointer=checkpointer)


def history(saver: BaseCheckpointSaver[Any]) -> Any:
    graph = nested_graph(saver)
    config: Any = {"configurable": {"thread_id": "n1"}}
    out = graph.invoke({"items": []}, config)
    paused = (out["items"], [i.value for i in out["__interrupt__"]])  # interrupt ids are random
    waiting = graph.get_state(config, subgraphs=True)
    done = graph.invoke(Command(resume="yes"), config)
    steps = [
        (s.metadata.get("step") if s.metadata else None, s.next, s.values)
        for s in graph.get_state_history(config)
    ]
    namespaces = sorted({t.config["configurable"]["checkpoint_ns"].partition(":")[0]
                         for t in saver.list(None)})  # fmt: skip
    return paused, waiting.next, [i.value for i in waiting.interrupts], done, steps, namespaces


def test_a_graph_with_a_subgraph_and_an_interrupt_runs_as_on_sqlitesaver(tether: Tether) -> None:
    theirs = history(SqliteSaver(sqlite3.connect(":memory:", check_same_thread=False)))
    ours = history(TetherSaver(tether, graph="nested@1.0.0"))
    assert ours == theirs
    # The subgraph returns its whole state, which the parent's reducer appends: 'first' twice.
    assert ours[3]["items"] == ["first", "first", "inner_a", "inner_b", "answer:yes"]
    assert ours[5] == ["", "sub"]  # the subgraph checkpointed in its own namespace
