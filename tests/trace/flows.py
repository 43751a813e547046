"""Workflows the trace tests run: one that calls every primitive, one whose tool calls the
guards judge (one allowed, one denied by policy), and one to kill a worker in."""

from __future__ import annotations

import time

from pydantic import BaseModel

from tether import Context, tool, workflow
from tether.errors import PolicyDenied


class Every(BaseModel):
    nap: float = 0.05


class Done(BaseModel):
    total: int


def plus(a: int, b: int) -> int:
    return a + b


@workflow(name="trace_child", version="1.0.0")
async def trace_child(ctx: Context, inp: Every) -> Done:
    value = await ctx.step("inside", plus, 1, 1)
    await ctx.sleep("child nap", inp.nap)
    return Done(total=value)


@workflow(name="every_primitive", version="1.0.0")
async def every_primitive(ctx: Context, inp: Every) -> Done:
    """A step, a gather of two branches (a step and a sleep each), a child run, an event wait
    and a last step: each parks the run at least once, so it is replayed again and again."""

    async def branch(i: int) -> int:
        value = await ctx.step(f"branch {i}", plus, i, 10)
        await ctx.sleep(f"branch nap {i}", inp.nap)
        return value

    first = await ctx.step("first", plus, 0, 1)
    branches = await ctx.gather(branch(0), branch(1))
    child = await ctx.invoke(trace_child, inp)
    answer = await ctx.wait_for_event("answer", "trace_answer", match={"to": ctx.run_id})
    last = await ctx.step("last", plus, first + sum(branches) + child.total, (answer or {})["n"])
    return Done(total=last)


@tool(replay="pure")
def trace_add(a: int, b: int) -> int:
    return a + b


@tool(replay="pure")
def trace_delete(what: str) -> str:
    return what


@workflow(name="guarded", version="1.0.0")
async def guarded(ctx: Context, inp: Every) -> Done:
    total = await ctx.tool(trace_add, a=1, b=2)
    try:
        await ctx.tool(trace_delete, what="everything")
    except PolicyDenied:
        total += 100
    return Done(total=total)


class Interrupted(BaseModel):
    marker: str  # each start of the long step appends a line here
    seconds: float = 1.5


def long_step(marker: str, seconds: float) -> int:
    with open(marker, "a") as f:
        f.write("started\n")
    time.sleep(seconds)
    return 1


@workflow(name="nap_then_long", version="1.0.0")
async def nap_then_long(ctx: Context, inp: Interrupted) -> Done:
    """Three steps, a nap (the park sends their spans), then a long step to be killed in."""
    total = 0
    for i in range(3):
        total += await ctx.step(f"step {i}", plus, i, 0)
    await ctx.sleep("nap", 0.2)
    total += await ctx.step("long", long_step, inp.marker, inp.seconds)
    total += await ctx.step("after", plus, 1, 0)
    return Done(total=total)


def pause(i: int, seconds: float) -> int:
    time.sleep(seconds)
    return i


@workflow(name="gather_then_long", version="1.0.0")
async def gather_then_long(ctx: Context, inp: Interrupted) -> Done:
    """Four branches of unequal length, then a long step to be killed in."""

    async def branch(i: int) -> int:
        return await ctx.step(f"branch {i}", pause, i, 0.3 * i)

    found = await ctx.gather(*(branch(i) for i in range(4)))
    total = sum(found) + await ctx.step("long", long_step, inp.marker, inp.seconds)
    return Done(total=total)


@workflow(name="direct_gather", version="1.0.0")
async def direct_gather(ctx: Context, inp: Every) -> Done:
    """Primitives passed to gather as they are: their ids are taken before the gather's."""
    first = await ctx.step("first", plus, 0, 1)
    a, _, b = await ctx.gather(
        ctx.step("a", plus, 1, 1), ctx.sleep("nap", inp.nap), ctx.step("b", plus, 2, 2)
    )
    return Done(total=await ctx.step("last", plus, first + a, b))
