"""The support-ticket triage agent: classify, route, ask a person before paging anyone, and
tell the customer.

Built only from tether's public API. The classification is a durable model call (the offline
`cheap_classify` model by default); an outage pages the on-call engineer only after a person
approves (an event that may come minutes or days later: the run holds no process meanwhile)
and is escalated if nobody answers in time. The email to the customer is an unsafe side
effect: it is sent at most once, whatever crashes.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from tether import Context, Message, workflow
from workflows.support_triage.tools import email_customer, page_oncall

QUEUES = {
    "outage": "incident",
    "billing": "finance",
    "account": "identity",
    "bug": "engineering",
    "feature_request": "product",
}


class Ticket(BaseModel):
    ticket_id: str = Field(min_length=1)
    text: str = Field(min_length=3)
    approval_timeout_seconds: float = Field(default=3600.0, gt=0)


class Triage(BaseModel):
    ticket_id: str
    label: str
    queue: str
    paged: bool
    decided_by: str
    emailed: bool


@workflow(name="support_triage", version="1.0.0")
async def support_triage(ctx: Context, ticket: Ticket) -> Triage:
    verdict = await ctx.model("cheap_classify", [Message.user(ticket.text)], sensitivity="internal")
    label = verdict.text.strip()
    queue = QUEUES.get(label, "frontline")
    paged, decided_by = False, "agent"
    if label == "outage":
        answer = await ctx.wait_for_event(
            "approve paging",
            "triage.approval",
            match={"ticket_id": ticket.ticket_id},
            timeout=ticket.approval_timeout_seconds,
        )
        if answer is None:
            queue, decided_by = "escalations", "timeout"
        else:
            decided_by = str(answer.get("by", "unknown"))
            if answer.get("approve"):
                await ctx.tool(page_oncall, ticket_id=ticket.ticket_id, queue=queue)
                paged = True
    await ctx.tool(
        email_customer,
        ticket_id=ticket.ticket_id,
        subject=f"We received your ticket {ticket.ticket_id}",
        body=f"Your ticket is with our {queue} team.",
    )
    return Triage(
        ticket_id=ticket.ticket_id,
        label=label,
        queue=queue,
        paged=paged,
        decided_by=decided_by,
        emailed=True,
    )
