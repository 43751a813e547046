"""The support-ticket triage agent: classify, route, and ask a person before paging anyone.

Built only from tether's public API. An outage ticket pages the on-call engineer only after a
person approves (an event that may come minutes or days later; the run holds no process while
it waits) and is escalated if nobody answers in time.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from tether import Context, workflow

Label = Literal["outage", "billing", "account", "bug", "feature_request", "other"]

_KEYWORDS: dict[str, tuple[str, ...]] = {
    "outage": ("down", "outage", "stopped", "not loading", "failing for everyone", "503"),
    "billing": ("invoice", "charge", "refund", "billing", "payment", "card"),
    "account": ("password", "login", "account", "email address", "2fa", "sso"),
    "bug": ("error", "bug", "crash", "broken", "wrong"),
    "feature_request": ("feature", "could you add", "support for", "would love", "plans to"),
}
_QUEUES = {"outage": "incident", "billing": "finance", "account": "identity", "bug": "engineering",
           "feature_request": "product", "other": "frontline"}


class Ticket(BaseModel):
    ticket_id: str = Field(min_length=1)
    text: str = Field(min_length=3)
    approval_timeout_seconds: float = Field(default=3600.0, gt=0)


class Triage(BaseModel):
    ticket_id: str
    label: Label
    queue: str
    paged: bool
    decided_by: str


def classify(text: str) -> Label:
    lowered = text.lower()
    for label, words in _KEYWORDS.items():
        if any(w in lowered for w in words):
            return label  # type: ignore[return-value]
    return "other"


@workflow(name="support_triage", version="1.0.0")
async def support_triage(ctx: Context, ticket: Ticket) -> Triage:
    label = await ctx.step("classify", classify, ticket.text)
    queue = _QUEUES[label]
    if label != "outage":
        return Triage(ticket_id=ticket.ticket_id, label=label, queue=queue, paged=False,
                      decided_by="agent")
    answer = await ctx.wait_for_event(
        "approve paging", "triage.approval", match={"ticket_id": ticket.ticket_id},
        timeout=ticket.approval_timeout_seconds,
    )
    if answer is None:
        return Triage(ticket_id=ticket.ticket_id, label=label, queue="escalations", paged=False,
                      decided_by="timeout")
    approved = bool(answer.get("approve"))
    return Triage(ticket_id=ticket.ticket_id, label=label, queue=queue, paged=approved,
                  decided_by=str(answer.get("by", "unknown")))
