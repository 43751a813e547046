"""The workflow the crash storm runs: five steps, a durable sleep, an event wait and an email
that must never be sent twice. Every execution is logged outside the journal."""

from __future__ import annotations

import os
import time

from pydantic import BaseModel

from tether import Context, tool, workflow


class Storm(BaseModel):
    n: int
    log: str  # one line per step execution: "n<TAB>step<TAB>start time"
    outbox: str  # one line per email actually sent


class Outcome(BaseModel):
    n: int
    total: int


def work(log: str, n: int, name: str) -> int:
    started = time.time()
    with open(log, "a") as f:  # O_APPEND: lines from concurrent workers never interleave
        f.write(f"{n}\t{name}\t{started:.6f}\n")
    time.sleep(0.01)  # a window for the storm to kill a worker mid-step
    return n


@tool(replay="unsafe_on_replay", timeout=30)
def storm_email(outbox: str, n: int) -> str:
    fd = os.open(outbox, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{n}\n".encode())
    finally:
        os.close(fd)
    return f"email {n}"


@workflow(name="storm", version="1.0.0")
async def storm(ctx: Context, inp: Storm) -> Outcome:
    total = 0
    for i in range(5):
        total += await ctx.step(f"step {i}", work, inp.log, inp.n, f"step {i}")
    await ctx.sleep("nap", 0.05)
    await ctx.wait_for_event("go", "chaos.go", match={"n": inp.n})
    await ctx.tool(storm_email, outbox=inp.outbox, n=inp.n)
    return Outcome(n=inp.n, total=total)
