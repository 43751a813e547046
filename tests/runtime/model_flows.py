"""A workflow whose model call streams its answer, for the token streaming receipts."""

from __future__ import annotations

from pydantic import BaseModel

from tether import Context, workflow


class Ask(BaseModel):
    text: str


@workflow(name="streamed_answer", version="1.0.0")
async def streamed_answer(ctx: Context, inp: Ask) -> str:
    reply = await ctx.model("summarize", [{"role": "user", "content": inp.text}], stream="answer")
    return reply.text
