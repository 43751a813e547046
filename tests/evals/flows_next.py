"""The next version of `ordered` (tests/evals/flows.py), promising to resume 1.0 runs: its step
order comes from TETHER_TEST_REORDER, as two candidate releases would differ."""

from __future__ import annotations

import os

from pydantic import BaseModel

from tether import Context, workflow


class Numbers(BaseModel):  # its own copy: importing flows would register 1.0.0 again
    n: int


async def _double(n: int) -> int:
    return 2 * n


async def _square(n: int) -> int:
    return n * n


@workflow(name="ordered", version="1.1.0", resumes=["1.0.*"])
async def ordered(ctx: Context, numbers: Numbers) -> int:
    if os.environ.get("TETHER_TEST_REORDER") == "1":
        b = await ctx.step("square", _square, numbers.n)
        a = await ctx.step("double", _double, numbers.n)
    else:
        a = await ctx.step("double", _double, numbers.n)
        b = await ctx.step("square", _square, numbers.n)
    return a + b
