"""Workflows for the PostgreSQL receipts. Each executed step appends `<step> <pid>` to the
run's own file, so executions (and which worker process did them) are counted outside the
journal."""

from __future__ import annotations

import os
import time

from pydantic import BaseModel

from tether import Context, workflow


class Tally(BaseModel):
    log: str
    steps: int = 5
    pause: float = 0.0


class Total(BaseModel):
    total: int


def effect(log: str, name: str, value: int, pause: float) -> int:
    time.sleep(pause)
    with open(log, "a") as f:
        f.write(f"{name} {os.getpid()}\n")
    return value


@workflow(name="tally", version="1.0.0")
async def tally(ctx: Context, inp: Tally) -> Total:
    total = 0
    for i in range(inp.steps):
        total += await ctx.step(f"step {i}", effect, inp.log, f"step {i}", i, inp.pause)
    return Total(total=total)
