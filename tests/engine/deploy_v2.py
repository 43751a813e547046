"""The greeter as the next deploy ships it (1.1.0), promising to take over parked 1.0.x runs;
the agent code carries no `patched()` branch for them."""

from __future__ import annotations

from tests.engine.greeting import Greeting, Reply, reply
from tether import Context, workflow


@workflow(name="greeter", version="1.1.0", resumes=["1.0.*"])
async def greeter(ctx: Context, inp: Greeting) -> Reply:
    await ctx.wait_for_event("greeted", "greet", match={"who": inp.who})
    return Reply(text=await ctx.step("reply", reply, inp.who, "1.1.0"))
