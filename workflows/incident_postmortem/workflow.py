"""The incident-postmortem agent: fetch the incident's timeline, chart it, grade its severity,
have the drafting model write the postmortem, and publish it only once an SRE lead approves
that exact text (I6); refused or unanswered in time, it is not published.

Built only from tether's public API, by configuration alone: the drafting task class
(`postmortem_draft`) can be routed to a model backend of its own (an OpenAI-compatible server,
see examples/incident_postmortem/tether.toml) and `render_timeline` to a lane of its own, with
no change here. Offline and unconfigured, every model call is answered by the local models.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from tether import Context, Message, workflow
from workflows.incident_postmortem.tools import fetch_timeline, publish_postmortem, render_timeline

DRAFT_TASK = "postmortem_draft"
_SYSTEM = (
    "You write blameless incident postmortems: impact, timeline, root cause, what went well, "
    "what to change. Be factual and brief; use only the facts given."
)


class IncidentRequest(BaseModel):
    incident_id: str = Field(min_length=1, description="The tracker's id, e.g. INC-101")
    approvers: list[str] = Field(default_factory=lambda: ["role:sre-lead"], min_length=1)
    approval_timeout_seconds: float = Field(default=86400.0, gt=0, description="Then: unpublished")


class Postmortem(BaseModel):
    incident_id: str
    severity: str
    duration_minutes: int
    timeline: str
    summary: str
    draft: str
    action_items: list[str]
    published_to: str | None
    decided_by: str


def duration(events: list[dict[str, str]]) -> int:
    """Minutes from the first entry to the last (an incident past midnight wraps)."""
    minutes = [int(e["at"][:2]) * 60 + int(e["at"][3:]) for e in events]
    return (minutes[-1] - minutes[0]) % (24 * 60) if minutes else 0


def severity(events: list[dict[str, str]]) -> str:
    """SEV1 when everything failed or it lasted an hour or more, else SEV2."""
    total = any("all " in e["text"] for e in events if e["kind"] == "alert")
    return "SEV1" if total or duration(events) >= 60 else "SEV2"


def action_items(events: list[dict[str, str]]) -> list[str]:
    """One follow-up per root cause, and one per manual action to automate."""
    items = [f"prevent: {e['text']}" for e in events if e["kind"] == "cause"]
    return items + [f"automate: {e['text']}" for e in events if e["kind"] == "action"]


@workflow(name="incident_postmortem", version="1.0.0")
async def incident_postmortem(ctx: Context, req: IncidentRequest) -> Postmortem:
    events = await ctx.tool(fetch_timeline, incident_id=req.incident_id)
    chart = await ctx.tool(render_timeline, events=events)
    grade = await ctx.step("severity", severity, events)
    minutes = await ctx.step("duration", duration, events)
    facts = " ".join(f"At {e['at']}, {e['text']}." for e in events)
    summary = await ctx.model("summarize", [Message.user(facts)])
    draft = await ctx.model(
        DRAFT_TASK,
        [
            Message.system(_SYSTEM),
            Message.user(f"Incident {req.incident_id}, {grade}, {minutes} minutes. {facts}"),
        ],
    )
    todo = await ctx.step("action items", action_items, events)
    title = f"Postmortem: {req.incident_id} ({grade})"
    body = "\n\n".join([summary.text, draft.text, chart, *(f"- {item}" for item in todo)])
    # the approver reads and approves this exact text; an edit would be a new request
    decision = await ctx.approval(
        "publish_postmortem",
        {"incident_id": req.incident_id, "title": title, "body": body},
        approvers=req.approvers,
        expires_in=req.approval_timeout_seconds,
        reason=f"publish the postmortem of {req.incident_id}",
    )  # fmt: skip
    published_to = None
    if decision.approved:
        published_to = await ctx.tool(
            publish_postmortem, incident_id=req.incident_id, title=title, body=body
        )
    return Postmortem(
        incident_id=req.incident_id, severity=grade, duration_minutes=minutes, timeline=chart,
        summary=summary.text, draft=draft.text, action_items=todo, published_to=published_to,
        decided_by=decision.by,
    )  # fmt: skip
