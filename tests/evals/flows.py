"""A workflow whose step order a test can change, as a deploy would change the code."""

from __future__ import annotations

from pydantic import BaseModel

from tether import Context, workflow

SWAPPED = False


class Numbers(BaseModel):
    n: int


async def _double(n: int) -> int:
    return 2 * n


async def _square(n: int) -> int:
    return n * n


@workflow(name="ordered", version="1.0.0")
async def ordered(ctx: Context, numbers: Numbers) -> int:
    first, second = ("square", "double") if SWAPPED else ("double", "square")
    a = await ctx.step(first, _square if SWAPPED else _double, numbers.n)
    b = await ctx.step(second, _double if SWAPPED else _square, numbers.n)
    return a + b
