"""Issue 21's agent turn for the write-count tests (test_turn_writes): a model call to the
`scripted` backend, then a pure tool call on the default lane with its answer, as the bench's
`bench_agent` does; named apart so it loads beside the other test modules' tools. The same turn
with an `unsafe_on_replay` tool shows which intent the runner sends to disk before dispatch."""

from __future__ import annotations

from pydantic import BaseModel

from tether import Context, tool, workflow


class Turns(BaseModel):
    turns: int
    unsafe: bool = False


@tool(replay="pure")
def turn_add(a: int, b: int) -> int:
    """Add two integers: the call is all overhead."""
    return a + b


@tool(replay="unsafe_on_replay")
def turn_send(a: int, b: int) -> int:
    """The same sum, declared as a call that must not reach the outside world twice."""
    return a + b


@workflow(name="turn_agent", version="1.0.0")
async def turn_agent(ctx: Context, inp: Turns) -> int:
    total = 0
    for i in range(inp.turns):
        reply = await ctx.model("turn", [{"role": "user", "content": f"turn {i}"}])
        total += await ctx.tool(turn_send if inp.unsafe else turn_add, a=int(reply.text), b=1)
    return total
