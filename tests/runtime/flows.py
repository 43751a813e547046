"""Workflows the runtime tests drive. Side effects are counted in `CALLS` (in-process) or in a
file named by the input (across processes), never read back from the journal."""

from __future__ import annotations

import asyncio
import os
import time
import weakref
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from tether import Context, NonRetryableError, RetryPolicy, tool, workflow

CALLS: Counter[str] = Counter()


class Steps(BaseModel):
    n: int = 3
    log: str = ""  # a file each executed step appends its name to
    pause: float = 0.0  # seconds each step takes
    fail_until: int = 0  # the middle step fails this many attempts


class Total(BaseModel):
    total: int


def effect(log: str, name: str, value: int, pause: float = 0.0) -> int:
    """A step body whose executions are observable from outside the journal."""
    if pause:
        time.sleep(pause)
    CALLS[name] += 1
    if log:
        with open(log, "a") as f:
            f.write(f"{name}\n")
            f.flush()
            os.fsync(f.fileno())
    return value


@workflow(name="steps", version="1.0.0")
async def steps(ctx: Context, inp: Steps) -> Total:
    total = 0
    for i in range(inp.n):
        total += await ctx.step(f"step {i}", effect, inp.log, f"step {i}", i, inp.pause)
    return Total(total=total)


def flaky(key: str, failures: int) -> str:
    CALLS[key] += 1
    if CALLS[key] <= failures:
        raise ConnectionError(f"attempt {CALLS[key]} of {key} failed")
    return key


class Flaky(BaseModel):
    key: str
    failures: int
    attempts: int = 3
    fatal: bool = False


@workflow(name="flaky", version="1.0.0")
async def flaky_flow(ctx: Context, inp: Flaky) -> Total:
    policy = RetryPolicy(max_attempts=inp.attempts, initial_interval=0.01, jitter=False)

    def body() -> str:
        if inp.fatal:
            raise NonRetryableError("the input is wrong; retrying will not help")
        return flaky(inp.key, inp.failures)

    await ctx.step("call", body, retry=policy)
    return Total(total=CALLS[inp.key])


class Fan(BaseModel):
    n: int = 50
    flaky_branch: int = -1
    flaky_failures: int = 1
    key: str = ""


FAN = {"reverse": False}  # tests flip the delay order between a crash and the resume
STOP_AFTER: dict[str, object] = {}  # {"steps": k, "event": threading.Event}: stop mid-run


@workflow(name="fan", version="1.0.0")
async def fan(ctx: Context, inp: Fan) -> Total:
    async def branch(i: int) -> int:
        delay = (inp.n - i if FAN["reverse"] else i) * 0.002
        first = await ctx.step(f"fetch {i}", _slow, f"fetch {i}", i, delay)
        if i == inp.flaky_branch:
            await ctx.step(
                f"flaky {i}",
                flaky,
                inp.key,
                inp.flaky_failures,
                retry=RetryPolicy(max_attempts=2, initial_interval=0.01, jitter=False),
            )
        second = await ctx.step(f"parse {i}", _slow, f"parse {i}", first * 2, delay)
        return int(second)

    results = await ctx.gather(*(branch(i) for i in range(inp.n)))
    return Total(total=sum(results))


async def _slow(label: str, value: int, delay: float) -> int:
    await asyncio.sleep(delay)
    CALLS[label] += 1
    if STOP_AFTER and sum(CALLS.values()) >= STOP_AFTER["steps"]:  # type: ignore[operator]
        STOP_AFTER["event"].set()  # type: ignore[attr-defined]
    return value


class Nap(BaseModel):
    seconds: float = 0.2
    log: str = ""


@workflow(name="nap", version="1.0.0")
async def nap(ctx: Context, inp: Nap) -> Total:
    await ctx.step("before", effect, inp.log, "before", 1)
    await ctx.sleep("nap", inp.seconds)
    await ctx.step("after", effect, inp.log, "after", 2)
    return Total(total=3)


class Approval(BaseModel):
    ticket: str
    timeout: float = 30.0


class Answer(BaseModel):
    answer: dict[str, object] | None


@workflow(name="approval", version="1.0.0")
async def approval(ctx: Context, inp: Approval) -> Answer:
    data = await ctx.wait_for_event(
        "approval", "approved", match={"ticket": inp.ticket}, timeout=inp.timeout
    )
    return Answer(answer=data)


@workflow(name="parent", version="1.0.0")
async def parent(ctx: Context, inp: Nap) -> Total:
    child = await ctx.invoke(nap, Nap(seconds=inp.seconds, log=inp.log))
    return Total(total=child.total + 1)


class Blob(BaseModel):
    size: int


@workflow(name="blob", version="1.0.0")
async def blob(ctx: Context, inp: Blob) -> Total:
    text = await ctx.step("make", lambda: "x" * inp.size)
    return Total(total=len(text))


@workflow(name="unserialisable", version="1.0.0")
async def unserialisable(ctx: Context, inp: Steps) -> Total:
    await ctx.step("socket", lambda: object())
    return Total(total=0)


def write_marker(path: str) -> str:
    Path(path).write_text("x")
    return path


DRIFT = {"first": "before"}  # tests rename the first step here to simulate a code change


@workflow(name="drift", version="1.0.0")
async def drift(ctx: Context, inp: Nap) -> Total:
    await ctx.step(DRIFT["first"], effect, inp.log, "first", 1)
    await ctx.sleep("nap", inp.seconds)
    await ctx.step("after", effect, inp.log, "after", 2)
    return Total(total=3)


@workflow(name="upgrade", version="1.1.0", resumes=["1.0.*"])
async def upgrade(ctx: Context, inp: Nap) -> Total:
    """The new code a deploy brings; it promises it can take over parked 1.0.x runs."""
    await ctx.step("before", effect, inp.log, "before", 1)
    await ctx.sleep("nap", inp.seconds)
    await ctx.step("after (1.1)", effect, inp.log, "after (1.1)", 10)
    return Total(total=11)


def uses_its_own_loop(x: int) -> int:
    """A sync function wrapping async code the way some SDKs do."""

    async def double() -> int:
        await asyncio.sleep(0)
        return 2 * x

    return asyncio.run(double())


@workflow(name="own_loop", version="1.0.0")
async def own_loop(ctx: Context, inp: Steps) -> Total:
    first = await ctx.step("first", uses_its_own_loop, inp.n)
    second = await ctx.step("second", uses_its_own_loop, first)
    return Total(total=second)


SEEN: dict[str, Any] = {}  # tests put a trace sink here; `watched` steps record what it holds


def spans_so_far(pause: float) -> int:
    time.sleep(pause)
    return len(SEEN["sink"].named("step ")) if "sink" in SEEN else -1


@workflow(name="watched", version="1.0.0")
async def watched(ctx: Context, inp: Steps) -> list[int]:
    return [await ctx.step(f"step {i}", spans_so_far, inp.pause) for i in range(inp.n)]


# Every step function `closures` makes, held weakly: what is left after the run was kept alive.
MADE: weakref.WeakSet[Any] = weakref.WeakSet()


def _made(i: int) -> Any:
    """A fresh function each call, sync for even i and async for odd, returning a Total."""
    if i % 2:

        async def later() -> Total:
            return Total(total=i)

        fn: Any = later
    else:

        def now() -> Total:
            return Total(total=i)

        fn = now
    MADE.add(fn)
    return fn


@workflow(name="closures", version="1.0.0")
async def closures(ctx: Context, inp: Steps) -> Total:
    total = 0
    for i in range(inp.n):
        made = await ctx.step(f"closure {i}", _made(i))
        assert isinstance(made, Total)  # typed by the annotation of this very function
        total += made.total
    return Total(total=total)


def charge(log: str, key: str, pause: float) -> str:
    """A payment processor that deduplicates on `key`; `log` records every key it was sent."""
    effect(log, key, 0)
    time.sleep(pause)
    return key


@tool(replay="pure", timeout=30)
def quote(log: str, key: str, pause: float) -> str:
    """A tool call whose arguments carry a minted key; `log` records every key it was sent."""
    return charge(log, key, pause)


class Charge(BaseModel):
    log: str
    pause: float = 0.0
    branches: int = 0  # 0: one charge at the top level; n: one in each of n gather branches
    by_tool: bool = False


def _minted(ctx: Context) -> str:
    """A key made of every value a workflow may branch on."""
    return f"{ctx.uuid()} {ctx.now().isoformat()} {ctx.random()}"


@workflow(name="charge", version="1.0.0")
async def charge_flow(ctx: Context, inp: Charge) -> list[str]:
    async def pay(label: str) -> str:
        key = _minted(ctx)
        if inp.by_tool:
            return str(await ctx.tool(quote, log=inp.log, key=key, pause=inp.pause))
        return await ctx.step(f"charge {label}", charge, inp.log, key, inp.pause)

    if inp.branches:
        return await ctx.gather(*(pay(str(i)) for i in range(inp.branches)))
    return [await pay("once")]


class Stream(BaseModel):
    n: int = 4
    nap: float = 0.0  # a durable sleep in the middle of the stream
    key: Any = "progress"
    log: str = ""  # with `pause`: a step before each value, logged as `effect` does
    pause: float = 0.0


@workflow(name="streamer", version="1.0.0")
async def streamer(ctx: Context, inp: Stream) -> Total:
    for i in range(inp.n):
        if inp.nap and i == inp.n // 2:
            await ctx.sleep("middle", inp.nap)
        if inp.log:
            await ctx.step(f"work {i}", effect, inp.log, f"work {i}", i, inp.pause)
        CALLS[f"stream {i}"] += 1
        await ctx.stream(inp.key, {"i": i})
    return Total(total=inp.n)


class Backoff(BaseModel):
    key: str
    backoff: float  # seconds before the second attempt
    log: str = ""  # through a tool that logs each attempt here, not a step


@tool(replay="pure", timeout=30)
def fails_once(log: str) -> int:
    """Fails its first call; `log` holds a line per call, in whatever process the lane uses."""
    calls = len(Path(log).read_text().splitlines()) + 1 if Path(log).exists() else 1
    with open(log, "a") as f:
        f.write("call\n")
    if calls == 1:
        raise ConnectionError("the first call fails")
    return calls


@workflow(name="backoff", version="1.0.0")
async def backoff_flow(ctx: Context, inp: Backoff) -> Total:
    policy = RetryPolicy(max_attempts=2, initial_interval=inp.backoff, jitter=False)
    if inp.log:
        return Total(total=await ctx.tool(fails_once, log=inp.log, retry=policy))
    await ctx.step("call", flaky, inp.key, 1, retry=policy)
    return Total(total=CALLS[inp.key])
