"""A workflow in a limited queue, for the queue receipts: at most 2 reports run at once across
every worker, at most 1 per customer."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel

from tether import Context, Queue, workflow

REPORTS = Queue("reports", concurrency=2, per_key=1)


class Report(BaseModel):
    customer: str
    pause: float = 0.2


async def _work(pause: float) -> None:
    await asyncio.sleep(pause)


@workflow(name="report", version="1.0.0", queue=REPORTS, concurrency_key=lambda r: r.customer)
async def report(ctx: Context, inp: Report) -> str:
    await ctx.step("gather", _work, inp.pause)
    await ctx.step("write", _work, inp.pause)
    return inp.customer
