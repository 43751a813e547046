"""The benchmark's workflows and activities on Temporal, in their own module as Temporal's
sandbox requires. `local` picks local activities (recorded as markers in the workflow task)
over regular ones (each its own task, scheduled and completed through the server)."""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from bench.measure import Stamps

EXECUTED = 0
CRASH_AT_MARKER = False
STAMPS: Stamps | None = None
_T = timedelta(seconds=10)


@activity.defn
async def add_one(i: int) -> int:
    global EXECUTED
    EXECUTED += 1
    return i + 1


@activity.defn
async def marker(i: int) -> int:
    if CRASH_AT_MARKER:
        os.kill(os.getpid(), signal.SIGKILL)
    assert STAMPS is not None
    STAMPS.stamp(i)
    return 0


@activity.defn
async def stamp(i: int) -> int:
    assert STAMPS is not None
    STAMPS.stamp(i)
    return i


@activity.defn
async def model(turn: int) -> str:
    """The scripted model: turn i answers "i"."""
    return str(turn)


@activity.defn
async def add(a: int, b: int) -> int:
    return a + b


ACTIVITIES = [add_one, marker, stamp, model, add]


async def _call(fn: Any, arg: int, local: bool, timeout: timedelta = _T) -> Any:
    if local:
        return await workflow.execute_local_activity(fn, arg, start_to_close_timeout=timeout)
    return await workflow.execute_activity(fn, arg, start_to_close_timeout=timeout)


@workflow.defn
class Seq:
    @workflow.run
    async def run(self, n: int, local: bool) -> int:
        total = 0
        for i in range(n):
            total += await _call(add_one, i, local)
        return total


@workflow.defn
class Agent:
    @workflow.run
    async def run(self, turns: int, local: bool) -> int:
        total = 0
        for i in range(turns):
            reply = await _call(model, i, local)
            if local:
                total += await workflow.execute_local_activity(
                    add, args=[int(reply), 1], start_to_close_timeout=_T
                )
            else:
                total += await workflow.execute_activity(
                    add, args=[int(reply), 1], start_to_close_timeout=_T
                )
        return total


@workflow.defn
class Fanout:
    @workflow.run
    async def run(self, n: int, local: bool) -> int:
        return sum(await asyncio.gather(*(_call(add_one, i, local) for i in range(n))))


@workflow.defn
class Resume:
    @workflow.run
    async def run(self, n: int, local: bool) -> int:
        total = 0
        for i in range(n):
            total += await _call(add_one, i, local)
        await _call(marker, n, local, timedelta(seconds=1))
        return total


@workflow.defn
class Event:
    def __init__(self) -> None:
        self.received: list[int] = []

    @workflow.signal
    def bench_ev(self, data: dict[str, int]) -> None:
        self.received.append(data["i"])

    @workflow.run
    async def run(self, k: int, local: bool) -> int:
        got = 0
        for i in range(k):
            await workflow.wait_condition(lambda i=i: len(self.received) > i)
            assert self.received[i] == i
            got += await _call(stamp, i, local) + 1 - i
        return got


@workflow.defn
class Park:
    @workflow.run
    async def run(self, seconds: float) -> int:
        await asyncio.sleep(seconds)
        return 1


WORKFLOWS = [Seq, Agent, Fanout, Resume, Event, Park]
