"""`tether queues`: each declared queue's limits, its runs holding a lease, its runs pending,
and how long the oldest pending one has waited (a queue at its limit shows it here first)."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tether.client import Tether
from tether.errors import ConfigurationError
from tether.foundation.checkpoint.queues import Queue, QueueState
from tether.settings import Settings

out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True)


def limits(q: Queue) -> str:
    shown = [
        f"{q.concurrency} running" if q.concurrency is not None else "",
        f"{q.per_key} per key" if q.per_key is not None else "",
        f"{q.starts} starts/{q.per:g}s" if q.starts is not None else "",
    ]
    return ", ".join(s for s in shown if s) or "none"


def queues_table(rows: list[tuple[Queue, QueueState]], now: float) -> Table:
    table = Table("queue", "limits", "running", "waiting", "oldest wait", box=None)
    for q, s in rows:
        waited = f"{now - s.oldest_wait:.1f}s" if s.oldest_wait is not None else ""
        table.add_row(q.name, limits(q), str(s.running), str(s.waiting), waited)
    if not rows:
        table.caption = "no queues declared (Queue(...) on a @workflow)"
    return table


def queues(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """List the queues the configured workflows declare, with what each holds now."""
    try:
        settings = Settings()
    except ValueError as e:
        raise ConfigurationError(f"invalid tether settings: {e}") from None
    with Tether(settings) as t:
        err.print(f"[dim]database: {t.database}[/]", highlight=False)
        rows, now = t.queues(), time.time()
        if not as_json:
            out.print(queues_table(rows, now))
            return
        shown = [
            {"name": q.name, "concurrency": q.concurrency, "per_key": q.per_key,
             "starts": q.starts, "per": q.per, "running": s.running, "waiting": s.waiting,
             "oldest_wait_seconds": None if s.oldest_wait is None else now - s.oldest_wait}
            for q, s in rows
        ]  # fmt: skip
        out.print(json.dumps(shown))
