"""A workflow that calls a pure tool, then an unsafe_on_replay one, for the fork receipts."""

from __future__ import annotations

from pydantic import BaseModel

from tests.tools.sample_tools import add, send_email
from tether import Context, workflow


class Mail(BaseModel):
    outbox: str


@workflow(name="add_then_mail", version="1.0.0")
async def add_then_mail(ctx: Context, inp: Mail) -> str:
    total = await ctx.tool(add, a=1, b=2)
    sent: str = await ctx.tool(send_email, outbox=inp.outbox, to="ops", body=f"total {total}")
    return sent
