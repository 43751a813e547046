"""The `ticket` workflow as release 1.0.0 ships it (one module per deploy)."""

from __future__ import annotations

from pydantic import BaseModel

from tether import Context, workflow


class Ask(BaseModel):
    ticket: str


class Answer(BaseModel):
    ticket: str
    answered_by: str
    approved_by: str


@workflow(name="ticket", version="1.0.0")
async def ticket(ctx: Context, ask: Ask) -> Answer:
    approval = await ctx.wait_for_event("approval", "ticket.approved", match={"ticket": ask.ticket})
    return Answer(
        ticket=ask.ticket, answered_by="1.0.0", approved_by=str((approval or {}).get("by"))
    )
