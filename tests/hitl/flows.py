"""Workflows the HITL receipts drive. Side effects land in files the input names (or in
`CALLS`), so they are counted outside the journal."""

from __future__ import annotations

import time
from collections import Counter

from pydantic import BaseModel

from tether import Context, Message, tool, workflow
from tether.foundation.hitl.contract import Verdict

CALLS: Counter[str] = Counter()


class Ask(BaseModel):
    version: str = "1.2.3"
    expires_in: float | None = None
    on_expire: str = "reject"
    escalate_to: list[list[str]] = []


class Asked(BaseModel):
    verdict: Verdict
    by: str
    expired: bool
    args: dict[str, str]


def prepare(version: str) -> str:
    CALLS["prepare"] += 1
    return version


@workflow(name="deploy_gate", version="1.0.0")
async def deploy_gate(ctx: Context, inp: Ask) -> Asked:
    version = await ctx.step("prepare", prepare, inp.version)
    decision = await ctx.approval(
        "deploy",
        {"version": version},
        approvers=["role:ops"],
        expires_in=inp.expires_in,
        on_expire=inp.on_expire,
        escalate_to=inp.escalate_to,
        reason=f"deploy {version}",
    )
    CALLS["after"] += 1
    return Asked(
        verdict=decision.verdict,
        by=decision.by,
        expired=decision.expired,
        args=decision.action.args,
    )


@tool(replay="unsafe_on_replay", timeout=30, requires_approval=True, approvers=["role:ops"])
def send_gated_mail(outbox: str, to: str, body: str, then_wait: float = 0.0) -> str:
    """Hand one email to the mail server (a line in `outbox`), then wait for its answer."""
    with open(outbox, "a") as f:
        f.write(f"{to}\t{body}\n")
    time.sleep(then_wait)  # a worker killed here leaves the call started, never finished
    return f"sent to {to}"


class Mail(BaseModel):
    outbox: str
    to: list[str]
    body: str = "hello"
    then_wait: float = 0.0


class Sent(BaseModel):
    results: list[str]


@workflow(name="gated_mail", version="1.0.0")
async def gated_mail(ctx: Context, inp: Mail) -> Sent:
    results = []
    for to in inp.to:
        results.append(
            await ctx.tool(
                send_gated_mail, outbox=inp.outbox, to=to, body=inp.body, then_wait=inp.then_wait
            )
        )
    return Sent(results=results)


@tool(replay="pure", timeout=30)
def look_up(side: str, ticket: str) -> str:
    """A tool whose every execution leaves a line in `side`."""
    with open(side, "a") as f:
        f.write(f"{ticket}\n")
    return f"customer of {ticket}"


class Triage(BaseModel):
    side: str
    ticket: str = "T-1"


class Triaged(BaseModel):
    answer: str
    verdict: Verdict
    by: str


@workflow(name="triage_then_ask", version="1.0.0")
async def triage_then_ask(ctx: Context, inp: Triage) -> Triaged:
    first = await ctx.model("agent", [Message.user(f"classify ticket {inp.ticket}")])
    second = await ctx.model("agent", [Message.user(f"draft a reply: {first.text}")])
    customer = await ctx.tool(look_up, side=inp.side, ticket=inp.ticket)
    decision = await ctx.approval(
        "send_reply", {"to": customer, "reply": second.text}, approvers=["role:ops"]
    )
    return Triaged(answer=second.text, verdict=decision.verdict, by=decision.by)


@tool(replay="unsafe_on_replay", timeout=30)
def refund(ledger: str, customer: str, amount: int) -> str:
    """Pay money back (a line in `ledger`); no approval of its own: I9's rules may demand one."""
    with open(ledger, "a") as f:
        f.write(f"{customer}\t{amount}\n")
    return f"refunded {amount} to {customer}"


class Refunds(BaseModel):
    ledger: str
    amounts: list[int]


@workflow(name="refunds", version="1.0.0")
async def refunds(ctx: Context, inp: Refunds) -> Sent:
    results = []
    for amount in inp.amounts:
        results.append(await ctx.tool(refund, ledger=inp.ledger, customer="c-1", amount=amount))
    return Sent(results=results)
