"""The research-and-report agent: plan questions, research them in parallel, draft, review.

Built only from tether's public API. Each stage is a durable primitive, so killing the worker
anywhere and starting it again finishes the report without redoing a finished stage.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from tether import Context, workflow
from workflows.research_report import sources


class ResearchRequest(BaseModel):
    topic: str = Field(min_length=3, description="What the report is about")
    questions: int = Field(default=3, ge=1, le=8, description="How many sub-questions")
    review_pause_seconds: float = Field(default=1.0, ge=0, description="Durable pause")


class Finding(BaseModel):
    question: str
    sources: list[str]
    summary: str


class Report(BaseModel):
    topic: str
    findings: list[Finding]
    body: str
    words: int


_ANGLES = ["checkpoints", "side effects", "timers", "events", "leases", "versions", "budgets",
           "observability"]


def plan(topic: str, n: int) -> list[str]:
    return [f"How do {angle} matter for {topic}?" for angle in _ANGLES[:n]]


def research(question: str) -> Finding:
    hits = sources.search(question)
    summary = " ".join(h["text"].split(". ")[0].rstrip(".") + "." for h in hits)
    return Finding(question=question, sources=[h["title"] for h in hits],
                   summary=summary or "No source in the library covers this.")


def draft(topic: str, findings: list[Finding]) -> str:
    parts = [f"# {topic}", ""]
    for f in findings:
        parts += [f"## {f.question}", f.summary, f"_Sources: {', '.join(f.sources) or 'none'}_",
                  ""]
    return "\n".join(parts)


@workflow(name="research_report", version="1.0.0")
async def research_report(ctx: Context, req: ResearchRequest) -> Report:
    questions = await ctx.step("plan", plan, req.topic, req.questions)
    findings = await ctx.gather(
        *(ctx.step(f"research {i + 1}", research, q) for i, q in enumerate(questions))
    )
    body = await ctx.step("draft", draft, req.topic, findings)
    await ctx.sleep("review pause", req.review_pause_seconds)
    return Report(topic=req.topic, findings=findings, body=body, words=len(body.split()))
