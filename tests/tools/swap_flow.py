"""The workflow of swap test #1: a persistent-session tool called twice, a park (a wait for an
event), and a third call; its code names no lane."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from tests.tools import sample_tools as t
from tether import Context, workflow


class Notes(BaseModel):
    ticket: str


class Counts(BaseModel):
    seen: list[dict[str, Any]]


@workflow(name="session_swap", version="1.0.0")
async def session_swap(ctx: Context, inp: Notes) -> Counts:
    first = await ctx.tool(t.session_count, note=f"{inp.ticket}-1")
    second = await ctx.tool(t.session_count, note=f"{inp.ticket}-2")
    await ctx.wait_for_event("resume", "swap.resume", match={"ticket": inp.ticket})
    third = await ctx.tool(t.session_count, note=f"{inp.ticket}-3")
    return Counts(seen=[first, second, third])
