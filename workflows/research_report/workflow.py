"""The research-and-report agent: plan questions, let the agent model research each one with
the library tool (in parallel), summarize, and save the report; with `publish: true`, send it
once an editor approves that exact send (I6), and not at all if the approval is refused or
expires.

Built only from tether's public API. Every model call and tool call is durable: kill the worker
anywhere and start it again, and the report is finished without paying for a model call twice
or running a finished tool call again.
"""

from __future__ import annotations

import json
from contextlib import suppress

from pydantic import BaseModel, Field

from tether import Context, Message, workflow
from tether.errors import ApprovalRejected
from workflows.research_report.tools import save_report, search_library, send_report

_ANGLES = [
    "checkpoints",
    "side effects",
    "timers",
    "events",
    "leases",
    "versions",
    "budgets",
    "observability",
]
_SYSTEM = (
    "You are a research assistant. Use search_library to find notes, then answer the "
    "question from what it returned."
)
_MAX_TURNS = 4


class ResearchRequest(BaseModel):
    topic: str = Field(min_length=3, description="What the report is about")
    questions: int = Field(default=3, ge=1, le=8, description="How many sub-questions")
    review_pause_seconds: float = Field(default=1.0, ge=0, description="Durable pause")
    publish: bool = Field(default=False, description="Send the report, once an editor approves")
    send_to: str = Field(default="readers@example.com", description="Who it is sent to")
    approval_timeout_seconds: float = Field(default=86400.0, gt=0, description="Then: not sent")


class Finding(BaseModel):
    question: str
    sources: list[str]
    notes: list[str]  # what the library returned, for the summary
    answer: str


class Report(BaseModel):
    topic: str
    findings: list[Finding]
    summary: str
    saved_to: str


def plan(topic: str, n: int) -> list[str]:
    return [f"How do {angle} matter for {topic}?" for angle in _ANGLES[:n]]


async def research(ctx: Context, question: str) -> Finding:
    """The agent loop for one question: model, tool, model... until it answers in text."""
    messages = [Message.system(_SYSTEM), Message.user(question)]
    sources: list[str] = []
    notes: list[str] = []
    for _ in range(_MAX_TURNS):
        reply = await ctx.model("agent", messages, tools=[search_library])
        messages.append(reply.as_message())
        if not reply.tool_calls:
            return Finding(question=question, sources=sources, notes=notes, answer=reply.text)
        for call in reply.tool_calls:
            found = await ctx.tool(search_library, **call.arguments)
            sources += [title for title in found["sources"].split(", ") if title]
            notes.append(found["notes"])
            messages.append(Message.tool(call, json.dumps(found)))
    answer = "(no answer within the turn limit)"
    return Finding(question=question, sources=sources, notes=notes, answer=answer)


def render(topic: str, findings: list[Finding]) -> str:
    parts = []
    for f in findings:
        parts += [f"## {f.question}", f.answer, f"_Sources: {', '.join(f.sources) or 'none'}_", ""]
    return "\n".join(parts)


@workflow(name="research_report", version="1.0.0")
async def research_report(ctx: Context, req: ResearchRequest) -> Report:
    questions = await ctx.step("plan", plan, req.topic, req.questions)
    findings = await ctx.gather(*(research(ctx, q) for q in questions))
    body = await ctx.step("render", render, req.topic, findings)
    evidence = " ".join(dict.fromkeys(note for f in findings for note in f.notes))
    summary = await ctx.model("summarize", [Message.user(evidence)])
    await ctx.sleep("review pause", req.review_pause_seconds)
    saved = await ctx.tool(save_report, title=req.topic, body=f"{summary.text}\n\n{body}")
    if req.publish:  # an editor approves this exact send; unanswered, it is not sent
        approval = {"expires_in": req.approval_timeout_seconds, "reason": f"publish {req.topic!r}"}
        with suppress(ApprovalRejected):  # rejected: not sent; I6 keeps who, when and why
            await ctx.tool(
                send_report, title=req.topic, path=saved, to=req.send_to, approval=approval
            )
    return Report(topic=req.topic, findings=findings, summary=summary.text, saved_to=saved)
