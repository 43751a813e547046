"""The support-ticket triage agent: classify, route, ask a person before paging anyone, and
tell the customer.

Built only from tether's public API. The classification is a durable model call (the offline
`cheap_classify` model by default); an outage pages the on-call engineer only after a support
lead approves that exact page (`ctx.approval`, I6: an answer that may come minutes or days
later, the run holding no process meanwhile). Unanswered in time, the request escalates to the
incident managers with a new deadline; unanswered again, it expires into a rejection and the
ticket goes to the escalations queue unpaged. Who decided, when, and on which arguments' hash
is kept in the request's history. The email to the customer is an unsafe side effect: it is
sent at most once, whatever crashes.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from tether import Context, Message, workflow
from workflows.support_triage.tools import email_customer, page_oncall

LEADS = ["role:support-leads"]  # who approves a page first
MANAGERS = ["role:incident-managers"]  # who is asked when the leads let it expire

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
    # how long each group has to decide before the request escalates, then expires
    approval_timeout_seconds: float = Field(default=3600.0, gt=0)


class Triage(BaseModel):
    ticket_id: str
    label: str
    queue: str
    paged: bool
    decided_by: str
    emailed: bool


@workflow(name="support_triage", version="1.1.0")
async def support_triage(ctx: Context, ticket: Ticket) -> Triage:
    verdict = await ctx.model("cheap_classify", [Message.user(ticket.text)], sensitivity="internal")
    label = verdict.text.strip()
    queue = QUEUES.get(label, "frontline")
    paged, decided_by = False, "agent"
    if label == "outage":
        decision = await ctx.approval(
            "page_oncall",
            {"ticket_id": ticket.ticket_id, "queue": queue},
            approvers=LEADS,
            expires_in=ticket.approval_timeout_seconds,
            on_expire="escalate",
            escalate_to=[MANAGERS],
            reason=f"outage reported in {ticket.ticket_id}: page on-call?",
        )
        decided_by = decision.by
        if decision.approved:  # with the arguments approved (edited ones, if edited)
            await ctx.tool(page_oncall, **decision.action.args)
            queue, paged = str(decision.action.args["queue"]), True
        elif decision.expired:
            queue = "escalations"
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
