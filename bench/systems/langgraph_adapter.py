"""LangGraph's functional API (`@entrypoint` / `@task`) with its own durable checkpointers:
`SqliteSaver` (WAL, SQLite's default synchronous=FULL) and `PostgresSaver`, run with
`durability="sync"` so every task's result is committed before the next task starts, the
guarantee the other systems give.

The `tether` option (`langgraph-on-tether-*`) runs the same entrypoints on tether's saver,
`TetherSaver`, whose checkpoints live in I2 (SQLite at the same durability, or PostgreSQL).
The `async` option (`langgraph-async-*`) runs `seq` and `agent` with `ainvoke` on LangGraph's
async savers (`AsyncSqliteSaver` on aiosqlite, `AsyncPostgresSaver`), so LangGraph is shown
at whichever of its two savers is faster here.

LangGraph has no workers: the caller's process executes the graph. So the multi-process
workload gives each process its share of threads, an event is `Command(resume=...)` passed to
`invoke` by the caller, and resume is `invoke(None)` on the killed thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import sqlite3
import time
from typing import Any

from bench.env import Env
from bench.measure import Sample, Stamps, Timer, cpu_seconds
from bench.processes import run_once, run_pool

EXECUTED = 0
CRASH_AT_MARKER = False
STAMPS: Stamps | None = None


class _Graphs:
    """The checkpointer and the benchmark's entrypoints bound to it."""

    def __init__(self, env: Env, url: str) -> None:
        self.stack = contextlib.ExitStack()
        self.postgres = env.backend == "postgres"
        self.on_tether = env.option == "tether"
        if self.on_tether:
            self.saver = _tether_saver(env, url)
            self._define()
            return
        if self.postgres:
            from langgraph.checkpoint.postgres import PostgresSaver

            self.saver: Any = self.stack.enter_context(PostgresSaver.from_conn_string(url))
        else:
            from langgraph.checkpoint.sqlite import SqliteSaver

            self.conn = sqlite3.connect(url, check_same_thread=False)
            self.saver = SqliteSaver(self.conn)
        self.saver.setup()
        self._define()

    def _define(self) -> None:
        from langgraph.func import entrypoint, task
        from langgraph.types import interrupt

        @task
        def add_one(i: int) -> int:
            global EXECUTED
            EXECUTED += 1
            return i + 1

        @task
        def marker(i: int) -> int:
            if CRASH_AT_MARKER:
                os.kill(os.getpid(), signal.SIGKILL)
            assert STAMPS is not None
            STAMPS.stamp(i)
            return 0

        @task
        def stamp(i: int) -> int:
            assert STAMPS is not None
            STAMPS.stamp(i)
            return i

        @entrypoint(checkpointer=self.saver)
        def seq(n: int) -> int:
            total = 0
            for i in range(n):
                total += add_one(i).result()
            return total

        @entrypoint(checkpointer=self.saver)
        def fanout(n: int) -> int:
            futures = [add_one(i) for i in range(n)]
            return sum(f.result() for f in futures)

        @entrypoint(checkpointer=self.saver)
        def resume(n: int) -> int:
            total = 0
            for i in range(n):
                total += add_one(i).result()
            marker(n).result()
            return total

        @entrypoint(checkpointer=self.saver)
        def event(k: int) -> int:
            got = 0
            for i in range(k):
                data = interrupt({"waiting_for": i})
                assert data["i"] == i
                got += stamp(i).result() + 1 - i
            return got

        self.seq, self.fanout, self.resume, self.event = seq, fanout, resume, event
        self.agent = _agent_graph(self.saver)

    def invoke(self, graph: Any, value: Any, thread: str) -> Any:
        return graph.invoke(value, {"configurable": {"thread_id": thread}}, durability="sync")

    def task_results(self, thread: str | None = None) -> int:
        """Task results the checkpointer holds (LangGraph journals each under `__return__`)."""
        if self.on_tether:
            config: Any = {"configurable": {"thread_id": thread}} if thread else None
            return sum(
                1 for t in self.saver.list(config) for w in t.pending_writes or ()
                if w[1] == "__return__"
            )  # fmt: skip
        where = "channel = '__return__'" + (" AND thread_id = %s" if thread else "")
        if not self.postgres:
            where = where.replace("%s", "?")
        sql = f"SELECT count(*) FROM checkpoint_writes WHERE {where}"
        if self.postgres:
            with self.saver.conn.cursor() as cur:
                cur.execute(sql, (thread,) if thread else ())
                row = cur.fetchone()
                return int(row["count"] if isinstance(row, dict) else row[0])
        sql = sql.replace("checkpoint_writes", "writes")
        return int(self.conn.execute(sql, (thread,) if thread else ()).fetchone()[0])


def _agent_graph(saver: Any) -> Any:
    """The agent loop as LangGraph's documentation draws it: a model node, then a `ToolNode`
    running the call it asked for, back to the model until the turns are done. The model node
    answers from a script (turn i asks for add(i, 1)); the graph ends after the tools node
    of the last turn, so a run makes one model call and one tool call a turn."""
    from langchain_core.messages import AIMessage, ToolMessage
    from langchain_core.tools import tool
    from langgraph.graph import END, START, MessagesState, StateGraph
    from langgraph.prebuilt import ToolNode

    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    def turns_done(state: dict[str, Any]) -> int:
        return sum(1 for m in state["messages"] if isinstance(m, ToolMessage))

    def model(state: dict[str, Any]) -> dict[str, Any]:
        turn = turns_done(state)
        call = {"name": "add", "args": {"a": turn, "b": 1}, "id": f"call-{turn}"}
        return {"messages": [AIMessage(content=str(turn), tool_calls=[call])]}

    def after_tools(state: dict[str, Any]) -> str:
        wanted = int(str(state["messages"][0].content))
        return END if turns_done(state) >= wanted else "model"

    graph = StateGraph(MessagesState)
    graph.add_node("model", model)
    graph.add_node("tools", ToolNode([add]))
    graph.add_edge(START, "model")
    graph.add_edge("model", "tools")
    graph.add_conditional_edges("tools", after_tools)
    return graph.compile(checkpointer=saver)


def _tether_saver(env: Env, url: str) -> Any:
    from tether import Settings, Tether
    from tether.integrations.langgraph import TetherSaver

    kw: dict[str, Any] = {
        "data_dir": str(env.dir / "tether"),
        "sqlite_synchronous": env.sqlite_synchronous,
        "trace": "none",
    }
    if env.backend == "postgres":
        kw.update(checkpoint="postgres", database_url=url)
    return TetherSaver(Tether(Settings(**kw)), graph="bench@1.0.0")


def _url(env: Env) -> str:
    return env.fresh_postgres() if env.backend == "postgres" else str(env.sqlite_path("langgraph"))


def _one_run(env: Env, p: dict[str, Any], which: str) -> Sample:
    g = _Graphs(env, _url(env))
    with Timer() as t:
        total = g.invoke(getattr(g, which), p["n"], "t-1")
    observed = {"total": total, "journaled": g.task_results("t-1"), "executed": EXECUTED}
    return Sample(t.wall_s, t.cpu_s, p["n"], observed)


def seq(env: Env, p: dict[str, Any]) -> Sample:
    if env.option == "async":
        return asyncio.run(_async_seq(env, p))
    return _one_run(env, p, "seq")


def _async_saver(env: Env, url: str) -> Any:
    if env.backend == "postgres":
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        return AsyncPostgresSaver.from_conn_string(url)
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    return AsyncSqliteSaver.from_conn_string(url)


def _returns(env: Env, url: str) -> int:
    """Task results journaled, read after the async saver closed (`_Graphs.task_results`)."""
    if env.backend == "postgres":
        import psycopg

        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM checkpoint_writes WHERE channel = '__return__'"
            ).fetchone()
    else:
        with contextlib.closing(sqlite3.connect(url)) as conn:
            row = conn.execute(
                "SELECT count(*) FROM writes WHERE channel = '__return__'"
            ).fetchone()
    return int(row[0]) if row else 0


async def _async_seq(env: Env, p: dict[str, Any]) -> Sample:
    from langgraph.func import entrypoint, task

    url = _url(env)
    async with _async_saver(env, url) as saver:
        await saver.setup()

        @task
        async def add_one(i: int) -> int:
            global EXECUTED
            EXECUTED += 1
            return i + 1

        @entrypoint(checkpointer=saver)
        async def seq(n: int) -> int:
            total = 0
            for i in range(n):
                total += await add_one(i)
            return total

        config: Any = {"configurable": {"thread_id": "t-1"}}
        with Timer() as t:
            total = await seq.ainvoke(p["n"], config, durability="sync")
    observed = {"total": total, "journaled": _returns(env, url), "executed": EXECUTED}
    return Sample(t.wall_s, t.cpu_s, p["n"], observed)


def _agent_facts(messages: list[Any]) -> tuple[int, int]:
    """(the tool results' sum, model and tool calls made) of one agent's messages."""
    from langchain_core.messages import AIMessage, ToolMessage

    total = sum(int(str(m.content)) for m in messages if isinstance(m, ToolMessage))
    calls = sum(
        1 for m in messages
        if isinstance(m, ToolMessage) or (isinstance(m, AIMessage) and m.tool_calls)
    )  # fmt: skip
    return total, calls


def agent(env: Env, p: dict[str, Any]) -> Sample:
    """`runs` agents one after another, after one untimed, as tether's; each its own thread."""
    if env.option == "async":
        return asyncio.run(_async_agent(env, p))
    g = _Graphs(env, _url(env))
    start = {"messages": [("user", str(p["turns"]))]}
    g.invoke(g.agent, start, "agent-warm")
    total = calls = 0
    with Timer() as t:
        for r in range(p["runs"]):
            got = _agent_facts(g.invoke(g.agent, start, f"agent-{r}")["messages"])
            total, calls = total + got[0], calls + got[1]
    return Sample(t.wall_s, t.cpu_s, p["runs"] * p["turns"], {"total": total, "calls": calls})


async def _async_agent(env: Env, p: dict[str, Any]) -> Sample:
    async with _async_saver(env, _url(env)) as saver:
        await saver.setup()
        graph = _agent_graph(saver)
        start = {"messages": [("user", str(p["turns"]))]}

        async def one(thread: str) -> tuple[int, int]:
            config: Any = {"configurable": {"thread_id": thread}}
            out = await graph.ainvoke(start, config, durability="sync")
            return _agent_facts(out["messages"])

        await one("agent-warm")
        total = calls = 0
        with Timer() as t:
            for r in range(p["runs"]):
                got = await one(f"agent-{r}")
                total, calls = total + got[0], calls + got[1]
    return Sample(t.wall_s, t.cpu_s, p["runs"] * p["turns"], {"total": total, "calls": calls})


def fanout(env: Env, p: dict[str, Any]) -> Sample:
    return _one_run(env, p, "fanout")


def _batch_prepare(env_text: str, url: str, runs: int, steps: int, index: int, count: int) -> Any:
    return _Graphs(Env.load(env_text), url), [r for r in range(runs) if r % count == index], steps


def _batch_work(state: Any) -> dict[str, int]:
    g, mine, steps = state
    want = steps * (steps + 1) // 2
    correct = sum(1 for r in mine if g.invoke(g.seq, steps, f"batch-{r}") == want)
    return {"executed": EXECUTED, "completed": len(mine), "correct": correct}


def batch(env: Env, p: dict[str, Any]) -> Sample:
    url = _url(env)
    g = _Graphs(env, url)  # creates the tables before the workers race to
    prepare = functools.partial(_batch_prepare, env.dump(), url, p["runs"], p["steps"])
    pool = run_pool(prepare, _batch_work, p["workers"])
    observed = {**pool.facts, "journaled": g.task_results()}
    return Sample(pool.wall_s, pool.cpu_s, p["runs"], observed, pool.peak_rss_kb)


def event(env: Env, p: dict[str, Any]) -> Sample:
    global STAMPS
    from langgraph.types import Command

    g = _Graphs(env, _url(env))
    STAMPS = stamps = Stamps(env.dir / "stamps.txt")
    g.invoke(g.event, p["events"], "e-1")  # runs to the first interrupt
    latencies: list[float] = []
    out: Any = None
    for i in range(p["events"]):
        sent = time.time()
        out = g.invoke(g.event, Command(resume={"i": i}), "e-1")
        latencies.append(stamps.wait_for(i) - sent)
    return Sample(
        sum(latencies),
        0.0,
        len(latencies),
        {"delivered": out if isinstance(out, int) else 0},
        extra={"latencies_s": latencies, "poll_interval_s": 0.0},
    )


def _crash(arg: tuple[str, str, int]) -> None:
    global CRASH_AT_MARKER
    env_text, url, n = arg
    CRASH_AT_MARKER = True
    g = _Graphs(Env.load(env_text), url)
    g.invoke(g.resume, n, "r-1")


def resume(env: Env, p: dict[str, Any]) -> Sample:
    global STAMPS
    url = _url(env)
    code = run_once(_crash, (env.dump(), url, p["n"]))
    if code != -9:
        raise RuntimeError(f"the run was not killed mid-step (exit {code})")
    g = _Graphs(env, url)
    STAMPS = stamps = Stamps(env.dir / "stamps.txt")
    cpu0 = cpu_seconds()
    sent = time.time()
    total = g.invoke(g.resume, None, "r-1")
    cpu = cpu_seconds() - cpu0
    reached = stamps.wait_for(p["n"])
    observed = {"total": total, "journaled": g.task_results("r-1"), "reexecuted": EXECUTED}
    return Sample(reached - sent, cpu, 1, observed)
