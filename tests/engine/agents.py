"""An agent loop whose conversation grows every turn, as the one in temporalio/sdk-python#1890
did: its model inputs add up to far more than Temporal's 50 MB history limit, so it finishes
on the temporal engine only if large values stay out of history."""

from __future__ import annotations

from pydantic import BaseModel

from tether import Context, workflow
from tether.foundation.models.contract import Message


class Conversation(BaseModel):
    calls: int
    chunk_bytes: int  # each turn adds a document of this size to the conversation


class Replies(BaseModel):
    calls: int
    last: str


@workflow(name="long_agent", version="1.0.0")
async def long_agent(ctx: Context, inp: Conversation) -> Replies:
    messages: list[Message] = []
    last = ""
    for i in range(inp.calls):
        page = f"document {i}: " + "lorem ipsum " * (inp.chunk_bytes // 12)
        messages.append(Message.user(f"{page}\nquestion {i}: what does document {i} say?"))
        reply = await ctx.model("agent", messages)
        messages.append(Message.assistant(reply.text))
        last = reply.text
    return Replies(calls=inp.calls, last=last)
