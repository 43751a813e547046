"""The benchmark's workflows on tether, written as a user would write them.

Steps are plain sync functions (the common case): at a workflow's top level `ctx.step` runs
them on the run's own thread, inside a gather on a pool thread. `EXECUTED` counts step bodies
run in this process, which is how the harness proves no journaled step ran again.
"""

from __future__ import annotations

import os
import signal
import time

from pydantic import BaseModel

from bench.measure import Stamps
from tether import Context, Queue, tool, workflow

EXECUTED = 0
# Set in the process that builds a killed run: its marker step SIGKILLs the process.
CRASH_AT_MARKER = False
STAMPS: Stamps | None = None
# Wall seconds of each awaited call, appended by the bench_add_* workflows as they run.
CALL_S: list[float] = []


def add_one(i: int) -> int:
    global EXECUTED
    EXECUTED += 1
    return i + 1


def marker(i: int) -> int:
    """The step after the journaled ones: dies the first time, stamps the clock on resume."""
    if CRASH_AT_MARKER:
        os.kill(os.getpid(), signal.SIGKILL)
    assert STAMPS is not None
    STAMPS.stamp(i)
    return 0


class Steps(BaseModel):
    n: int


@workflow(name="bench_seq", version="1.0.0")
async def seq(ctx: Context, inp: Steps) -> int:
    total = 0
    for i in range(inp.n):
        total += await ctx.step("add_one", add_one, i)
    return total


@workflow(name="bench_stream", version="1.0.0")
async def stream(ctx: Context, inp: Steps) -> int:
    """The seq shape with a stream append in place of each step."""
    total = 0
    for i in range(inp.n):
        await ctx.stream("progress", i)
        total += i + 1
    return total


# Limits a claim must count (under the queue's lock on PostgreSQL) that 3 one-slot workers
# never reach: what is measured is the queued claim's cost, not waiting for a slot.
BENCH_QUEUE = Queue("bench", concurrency=3, per_key=3)


@workflow(name="bench_seq_queued", version="1.0.0", queue=BENCH_QUEUE)
async def seq_queued(ctx: Context, inp: Steps) -> int:
    total = 0
    for i in range(inp.n):
        total += await ctx.step("add_one", add_one, i)
    return total


@workflow(name="bench_seq_closure", version="1.0.0")
async def seq_closure(ctx: Context, inp: Steps) -> int:
    """`seq` with each step a closure: on the temporal engine, which calls a step's function
    by name on any worker, a closure runs as a local activity of the workflow's worker."""
    total = 0
    for i in range(inp.n):
        total += await ctx.step("add_one", lambda i=i: add_one(i))
    return total


@workflow(name="bench_fanout", version="1.0.0")
async def fanout(ctx: Context, inp: Steps) -> int:
    results = await ctx.gather(*(ctx.step("add_one", add_one, i) for i in range(inp.n)))
    return sum(results)


@workflow(name="bench_resume", version="1.0.0")
async def resume(ctx: Context, inp: Steps) -> int:
    total = 0
    for i in range(inp.n):
        total += await ctx.step("add_one", add_one, i)
    await ctx.step("marker", marker, inp.n)
    return total


class Events(BaseModel):
    events: int


def stamp(i: int) -> int:
    assert STAMPS is not None
    STAMPS.stamp(i)
    return i


@workflow(name="bench_event", version="1.0.0")
async def event(ctx: Context, inp: Events) -> int:
    got = 0
    for i in range(inp.events):
        data = await ctx.wait_for_event(f"wait{i}", "bench_ev", match={"i": i}, timeout=600)
        assert data is not None and data["i"] == i
        got += await ctx.step("stamp", stamp, i) + 1 - i
    return got


class Park(BaseModel):
    seconds: float


@workflow(name="bench_park", version="1.0.0")
async def park(ctx: Context, inp: Park) -> int:
    await ctx.sleep("nap", inp.seconds)
    return 1


@tool(replay="pure")
def add(a: int, b: int) -> int:
    """Add two integers: a tool whose own work costs nothing, so its call is all overhead."""
    return a + b


@workflow(name="bench_add_tools", version="1.0.0")
async def add_tools(ctx: Context, inp: Steps) -> int:
    total = 0
    for i in range(inp.n):
        started = time.perf_counter()
        total += await ctx.tool(add, a=i, b=1)
        CALL_S.append(time.perf_counter() - started)
    return total


@workflow(name="bench_add_steps", version="1.0.0")
async def add_steps(ctx: Context, inp: Steps) -> int:
    """The same function as plain steps: what a tool call costs on top."""
    total = 0
    for i in range(inp.n):
        started = time.perf_counter()
        total += await ctx.step("add", add.fn, i, 1)
        CALL_S.append(time.perf_counter() - started)
    return total


class Turns(BaseModel):
    turns: int


@workflow(name="bench_agent", version="1.0.0")
async def agent(ctx: Context, inp: Turns) -> int:
    """Issue 21's agent turn: a model call (the `scripted` backend answers turn i with "i")
    and a pure tool call on the default lane with its answer."""
    total = 0
    for i in range(inp.turns):
        reply = await ctx.model("bench", [{"role": "user", "content": f"turn {i}"}])
        total += await ctx.tool(add, a=int(reply.text), b=1)
    return total


@workflow(name="bench_started", version="1.0.0")
async def started(ctx: Context, inp: Steps) -> int:
    """Its first step stamps the moment it runs: start latency, seen from the step."""
    return await ctx.step("stamp", stamp, inp.n)
