"""The greeter as the first deploy ships it (1.0.0): it waits for a greeting, then replies."""

from __future__ import annotations

from tests.engine.greeting import Greeting, Reply, reply
from tether import Context, workflow


@workflow(name="greeter", version="1.0.0")
async def greeter(ctx: Context, inp: Greeting) -> Reply:
    await ctx.wait_for_event("greeted", "greet", match={"who": inp.who})
    return Reply(text=await ctx.step("reply", reply, inp.who, "1.0.0"))
