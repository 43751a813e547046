"""Workflows whose rows `tether triggers` measures: model calls by the dozen or by the pair,
tools with and without cross-call state, and an approval two groups may give."""

from __future__ import annotations

from pydantic import BaseModel

from tether import Context, Message, tool, workflow


@tool(replay="pure", timeout=30)
def word_count(text: str) -> int:
    return len(text.split())


@tool(replay="idempotent_with_key", persistence="persistent_session", timeout=30)
def remember(note: str, idempotency_key: str) -> str:
    return note


@tool(replay="pure", persistence="persistent_session", timeout=30)
def recall(note: str) -> str:
    return note


TOOLS = {t.name: t for t in (word_count, remember, recall)}


class Chat(BaseModel):
    turns: int
    tools: list[str] = ["word_count"]


class Said(BaseModel):
    turns: int


async def _chat(ctx: Context, inp: Chat) -> Said:
    for turn in range(inp.turns):
        await ctx.model("agent", [Message.user(f"turn {turn}: say something brief")])
    for name in inp.tools:
        args = {"text": "one two"} if name == "word_count" else {"note": name}
        await ctx.tool(TOOLS[name], **args)
    return Said(turns=inp.turns)


@workflow(name="talkative", version="1.0.0")
async def talkative(ctx: Context, inp: Chat) -> Said:
    return await _chat(ctx, inp)


@workflow(name="laconic", version="1.0.0")
async def laconic(ctx: Context, inp: Chat) -> Said:
    return await _chat(ctx, inp)


class Gate(BaseModel):
    approvers: list[str]


@workflow(name="ship_gate", version="1.0.0")
async def gate(ctx: Context, inp: Gate) -> str:
    decision = await ctx.approval("ship", {"what": "it"}, approvers=inp.approvers)
    return decision.verdict.value
