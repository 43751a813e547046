"""Workflows and tools the end-to-end receipts drive: every call goes through the runtime's
one call path (guards, I1 or I12, journal, cost, trace). Side effects land in files the test
names, so they are counted outside the journal."""

from __future__ import annotations

import os
import time
from pathlib import Path

from pydantic import BaseModel

from tether import Context, Message, tool, workflow
from tether.foundation.limits.contract import Budget


@tool(replay="unsafe_on_replay", timeout=30)
def send_mail(outbox: str, to: str, body: str, then_wait: float = 0.0) -> str:
    """Hand one email to the mail server (a line in `outbox`), then wait for its answer."""
    with open(outbox, "a") as f:
        f.write(f"{to}\t{body}\n")
    time.sleep(then_wait)  # a worker killed here leaves the call started, never finished
    return f"sent to {to}"


@tool(replay="unsafe_on_replay", timeout=30)
def slow_mail(started: str, outbox: str, delay: float) -> str:
    """Takes `delay` seconds to reach the mail server; `started` gets the tool's pid first."""
    Path(started).write_text(str(os.getpid()))
    time.sleep(delay)
    with open(outbox, "a") as f:
        f.write("late\n")
    return "sent"


@tool(replay="pure", timeout=30)
def lookup(marker: str, key: str) -> str:
    """A read; `marker` records that it ran."""
    with open(marker, "a") as f:
        f.write(key + "\n")
    return key.upper()


@tool(replay="unsafe_on_replay", timeout=30)
def delete_records(marker: str, table: str) -> str:
    """A write the policy forbids; `marker` would prove it ran."""
    Path(marker).write_text(table)
    return f"deleted {table}"


class Mail(BaseModel):
    outbox: str
    then_wait: float = 0.0


class Done(BaseModel):
    result: str


@workflow(name="mailer", version="1.0.0")
async def mailer(ctx: Context, inp: Mail) -> Done:
    sent = await ctx.tool(
        send_mail, outbox=inp.outbox, to="ana@example.com", body="hello", then_wait=inp.then_wait
    )
    return Done(result=str(sent))


class SlowMail(BaseModel):
    started: str
    outbox: str
    delay: float


@workflow(name="slow_mailer", version="1.0.0")
async def slow_mailer(ctx: Context, inp: SlowMail) -> Done:
    return Done(result=await ctx.tool(slow_mail, **inp.model_dump()))


class Chat(BaseModel):
    calls: int
    task: str = "agent"


@workflow(name="chatty", version="1.0.0")
async def chatty(ctx: Context, inp: Chat) -> Done:
    last = ""
    for i in range(inp.calls):
        reply = await ctx.model(inp.task, [Message.user(f"question number {i}: what is {i}?")])
        last = reply.text
    return Done(result=last)


class Loop(BaseModel):
    marker: str


@workflow(name="looping", version="1.0.0")
async def looping(ctx: Context, inp: Loop) -> Done:
    for _ in range(5):
        await ctx.tool(lookup, marker=inp.marker, key="same")
    return Done(result="never")


class Cleanup(BaseModel):
    marker: str


@workflow(name="cleanup", version="1.0.0")
async def cleanup(ctx: Context, inp: Cleanup) -> Done:
    result = await ctx.tool(delete_records, marker=inp.marker, table="customers")
    return Done(result=str(result))


@workflow(name="bad_args", version="1.0.0")
async def bad_args(ctx: Context, inp: Loop) -> Done:
    result = await ctx.tool(lookup, marker=inp.marker, key=["not", "a", "string"])
    return Done(result=str(result))


class Work(BaseModel):
    marker: str
    stall: float = 30.0


def stall_once(marker: str, seconds: float) -> str:
    """Stalls the first time it runs (the test kills the worker there), not on the re-run."""
    first = not Path(marker).exists()
    Path(marker).write_text("ran")
    if first:
        time.sleep(seconds)
    return "worked"


@workflow(name="chat_then_work", version="1.0.0")
async def chat_then_work(ctx: Context, inp: Work) -> Done:
    first = await ctx.model("agent", [Message.user("first question: what is durable?")])
    second = await ctx.model("agent", [Message.user("second question: what is a lease?")])
    await ctx.step("work", stall_once, inp.marker, inp.stall)
    third = await ctx.model("agent", [Message.user("third question: what is a journal?")])
    return Done(result=" | ".join(r.text for r in (first, second, third)))


@tool(replay="pure", timeout=30)
def call_service(api_key: str, fail: bool = False) -> str:
    """Use a credential; on `fail`, raise an error that quotes it, as careless code does."""
    if fail:
        raise PermissionError(f"service refused key {api_key}")
    return "service answered"


class Keyed(BaseModel):
    secret_name: str


@workflow(name="keyed", version="1.0.0")
async def keyed(ctx: Context, inp: Keyed) -> Done:
    key = ctx.secret(inp.secret_name)
    reply = await ctx.model("agent", [Message.user(f"Summarise this: the key is {key}.")])
    answer = await ctx.tool(call_service, api_key=key)
    try:
        await ctx.tool(call_service, api_key=key, fail=True)
    except Exception as e:
        return Done(result=f"{answer}; {reply.text}; {e}")
    return Done(result=answer)


@tool(replay="pure", timeout=30)
def probe(
    outside: str, port: int, secrets: list[str], worker: int, variable: str
) -> dict[str, object]:
    """Try to leave the sandbox: write a file outside the tool's directory, open a socket,
    read each of `secrets` (files it has no business with), and read `variable` from the
    worker's environment (its own, or /proc/WORKER/environ). Reports what it managed."""
    import socket

    wrote = connected = False
    try:
        Path(outside).write_text("escaped")
        wrote = True
    except OSError:
        pass
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        connected = True
    except OSError:
        pass
    read = []
    for secret in secrets:
        try:
            Path(secret).read_bytes()
            read.append(secret)
        except OSError:
            pass
    try:
        environ = Path(f"/proc/{worker}/environ").read_bytes().decode(errors="replace")
    except OSError:
        environ = ""
    seen = variable in os.environ or f"{variable}=" in environ
    return {"wrote_outside": wrote, "connected": connected, "read": read,
            "worker_env": seen, "uid": os.getuid()}  # fmt: skip


class Probe(BaseModel):
    outside: str
    port: int
    secrets: list[str] = []
    worker: int = 0
    variable: str = "TETHER_PROBE_SECRET"


class Escape(BaseModel):
    wrote_outside: bool
    connected: bool
    read: list[str]
    worker_env: bool
    uid: int


@workflow(name="probing", version="1.0.0")
async def probing(ctx: Context, inp: Probe) -> Escape:
    found = await ctx.tool(probe, **inp.model_dump())
    return Escape(**found)


@tool(replay="pure", timeout=20, memory_mb=128)
def hog(mb: int) -> int:
    """Allocate `mb` megabytes: over its 128 MB limit, the sandbox must kill it."""
    return len(bytearray(mb * 1024 * 1024))


class Hog(BaseModel):
    mb: int


@workflow(name="hogging", version="1.0.0")
async def hogging(ctx: Context, inp: Hog) -> Done:
    size = await ctx.tool(hog, mb=inp.mb)
    return Done(result=str(size))


class Mailing(BaseModel):
    outbox: str
    marker: str


@workflow(name="mail_then_work", version="1.0.0")
async def mail_then_work(ctx: Context, inp: Mailing) -> Done:
    sent = await ctx.tool(send_mail, outbox=inp.outbox, to="ana@example.com", body="hello")
    await ctx.step("work", stall_once, inp.marker, 30.0)
    return Done(result=str(sent))


@tool(replay="pure", persistence="persistent_session", timeout=20)
def tally(label: str) -> dict[str, int]:
    """Count calls in the session's directory; report the serving process. (Each call has its
    own label: three identical calls in a row would be stopped as a loop.)"""
    import os

    counter = Path.cwd() / "count"
    n = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(n))
    return {"count": n, "pid": os.getpid()}


class Tally(BaseModel):
    pause: float = 0.05


class Tallies(BaseModel):
    counts: list[int]
    pids: list[int]


@workflow(name="tallying", version="1.0.0")
async def tallying(ctx: Context, inp: Tally) -> Tallies:
    first = await ctx.tool(tally, label="first")
    second = await ctx.tool(tally, label="second")
    await ctx.sleep("park", inp.pause)
    third = await ctx.tool(tally, label="third")
    calls = (first, second, third)
    return Tallies(counts=[c["count"] for c in calls], pids=[c["pid"] for c in calls])


class Team(BaseModel):
    """A lead that plans with one model call, then hands the work to `members` sub-agents in
    turn (each a `chatty` of `calls` calls, or a team of its own while `depth` > 0)."""

    members: int = 3
    calls: int = 5
    depth: int = 0
    member_cap: int | None = None  # a sub-budget for each member
    inner_cap: int | None = None  # the member_cap of nested teams
    task: str = "agent"


@workflow(name="team", version="1.0.0")
async def team(ctx: Context, inp: Team) -> Done:
    await ctx.model(inp.task, [Message.user(f"plan the work of {inp.members} members")])
    budget = None if inp.member_cap is None else Budget(model_call_cap=inp.member_cap)
    for i in range(inp.members):
        if inp.depth > 0:
            sub = inp.model_copy(update={"depth": inp.depth - 1, "member_cap": inp.inner_cap})
            await ctx.invoke(team, sub, name=f"team {i}", budget=budget)
        else:
            chat = Chat(calls=inp.calls, task=inp.task)
            await ctx.invoke(chatty, chat, name=f"member {i}", budget=budget)
    return Done(result="the team is done")


@tool(replay="pure", timeout=30, env=["HELPDESK_TOKEN"])
def read_env(name: str) -> str:
    """What the tool's process sees of variable `name` ('<unset>' if nothing)."""
    return os.environ.get(name, "<unset>")


class EnvProbe(BaseModel):
    names: list[str]


@workflow(name="env_probe", version="1.0.0")
async def env_probe(ctx: Context, inp: EnvProbe) -> Done:
    seen = [await ctx.tool(read_env, name=n) for n in inp.names]
    return Done(
        result=",".join(
            f"{n}={'<unset>' if v == '<unset>' else len(v)}"
            for n, v in zip(inp.names, seen, strict=True)
        )
    )
