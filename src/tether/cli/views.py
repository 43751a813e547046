"""How the CLI draws runs and journals: tables for `runs` and `inspect`, lines for `run --wait`.

Kept apart from the commands so the HTTP UI and the CLI agree on what a step "is": one row per
step id, its attempts counted, its final entry's value or error shown.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table

from tether.client import RunView, Tether
from tether.foundation.checkpoint.contract import (
    EntryKind,
    EntryStatus,
    JournalEntry,
    RunRecord,
    RunStatus,
    Schedule,
    WaitKind,
)
from tether.foundation.cost.contract import CostRecord, CostTotal

_STATUS_STYLE = {
    RunStatus.COMPLETED: "green",
    RunStatus.FAILED: "red",
    RunStatus.CANCELLED: "yellow",
    RunStatus.NEEDS_ATTENTION: "bold magenta",
    RunStatus.PAUSED: "magenta",
    RunStatus.RUNNING: "cyan",
    RunStatus.SLEEPING: "blue",
    RunStatus.WAITING: "blue",
}


def when(ts: float | None) -> str:
    return "" if not ts else datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.1f} s"


def _short(text: str | None, width: int = 60) -> str:
    if text is None:
        return ""
    return text if len(text) <= width else text[: width - 1] + "…"


def _status(status: RunStatus) -> str:
    return f"[{_STATUS_STYLE.get(status, 'white')}]{status.value}[/]"


def steps(journal: list[JournalEntry]) -> list[tuple[JournalEntry, int]]:
    """The journal folded to one row per step id: its last entry and how many attempts."""
    rows: dict[str, tuple[JournalEntry, int]] = {}
    for e in journal:
        last, _ = rows.get(e.step_id, (e, 0))
        if e.attempt >= last.attempt:
            last = e
        rows[e.step_id] = (last, max(e.attempt, rows.get(e.step_id, (e, 0))[1]))
    return sorted(rows.values(), key=lambda r: r[0].started_at)


def _shown(e: JournalEntry, cost: CostRecord | None = None) -> str | None:
    """The gist of an entry: a model call's tokens, cost and answer (or the tools it asked
    for), else the value."""
    if e.status is not EntryStatus.OK:
        return e.error
    if e.kind is EntryKind.MODEL and e.value and "$blob" not in e.value:
        routed = json.loads(e.value)
        response, decision = routed["response"], routed["decision"]
        calls = ", ".join(c["name"] for c in response.get("tool_calls", []))
        said = f"calls {calls}" if calls else repr(response.get("text", ""))
        spent = ""
        if cost is not None:
            usd = f"${cost.usd:.6f}" if cost.priced else "unpriced"
            spent = f" {cost.input_tokens}→{cost.output_tokens} tok {usd}"
        return f"{decision['backend']}/{decision['model']}{spent}: {said}"
    return e.value


def schedules_table(schedules: list[Schedule]) -> Table:
    table = Table("schedule", "cron", "workflow", "catchup", "next tick", box=None)
    for s in schedules:
        table.add_row(s.name, s.cron, s.workflow, s.catchup, when(s.next_at))
    if not schedules:
        table.caption = "no schedules"
    return table


def runs_table(runs: list[RunRecord], costs: dict[str, CostTotal]) -> Table:
    table = Table(box=None)
    for column in ("run", "workflow", "status", "created", "cost"):
        table.add_column(column, no_wrap=True)
    for r in runs:
        total = costs.get(r.id)
        spent = f"${total.usd:.4f}" if total and total.calls else ""
        created = datetime.fromtimestamp(r.created_at).strftime("%m-%d %H:%M:%S")
        table.add_row(r.id, r.workflow_id, _status(r.status), created, spent)
    if not runs:
        table.caption = "no runs"
    else:
        usd = sum((c.usd for c in costs.values()), Decimal(0))
        calls = sum(c.calls for c in costs.values())
        table.caption = f"{len(runs)} runs; model calls {calls}, cost ${usd:.4f}"
    return table


def print_inspect(t: Tether, view: RunView, console: Console) -> None:
    run = view.run
    console.print(f"[bold]{run.id}[/]  {run.workflow_id}  {_status(run.status)}", highlight=False)
    waiting_to_start = run.status is RunStatus.PENDING and run.start_at
    console.print(
        f"created {when(run.created_at)}  updated {when(run.updated_at)}"
        + (f"  wakes {when(run.wake_at)}" if run.wake_at else "")
        + (f"  starts {when(run.start_at)}" if waiting_to_start else ""),
        highlight=False,
    )
    if run.queue is not None:
        key = f", key {run.queue_key}" if run.queue_key is not None else ""
        console.print(f"queue  {run.queue}{key}, priority {run.priority}", highlight=False)
    console.print(f"input  {_short(t.codec.resolve(run.input), 200)}", highlight=False)
    if run.output is not None:
        console.print(f"output {_short(t.codec.resolve(run.output), 200)}", highlight=False)
    if view.cost.calls:
        unpriced = f" ({view.cost.unpriced_calls} unpriced)" if view.cost.unpriced_calls else ""
        console.print(
            f"cost   ${view.cost.usd:.6f} for {view.cost.calls} model calls, "
            f"{view.cost.input_tokens} in / {view.cost.output_tokens} out tokens"
            f"{unpriced}",
            highlight=False,
        )
    if view.tree is not None and (view.tree.calls or view.tree.spent_usd):
        whose = "this run's tree" if view.root_id == run.id else f"the tree of {view.root_id}"
        raised = f" (raised ${view.tree.raised_usd:.4f})" if view.tree.raised_usd else ""
        console.print(
            f"budget {whose}: {view.tree.calls} model calls, ${view.tree.spent_usd:.6f}"
            f"{raised}; this run's own: {view.cost.calls} calls, ${view.cost.usd:.6f}",
            highlight=False,
        )
    if run.error:
        where = f" at step {run.failed_step}" if run.failed_step else ""
        console.print(f"[red]error{where}[/] {run.error}", highlight=False)
    table = Table(box=None)
    for column in ("step", "kind", "name", "tries", "status", "took"):
        table.add_column(column, no_wrap=True)
    table.add_column("output / error", no_wrap=True)
    width = max(24, console.width - 64)
    priced = {c.step_id: c for c in view.calls}
    for e, attempts in steps(view.journal):
        style = "red" if e.status is EntryStatus.ERROR else ""
        table.add_row(
            e.step_id,
            e.kind.value,
            e.name,
            str(attempts),
            e.status.value,
            _ms(e.finished_at - e.started_at),
            _short(_shown(e, priced.get(e.step_id)), width),
            style=style,
        )
    call = view.interrupted
    if call is not None:
        table.add_row(
            call.step_id,
            "tool",
            call.tool,
            str(call.attempt),
            "interrupted",
            "",
            _short(
                f"started {when(call.started_at)}, no answer; decide with `tether resolve "
                f"{run.id} --step {call.step_id} --result JSON | --skip | --rerun`",
                width,
            ),
            style="bold magenta",
        )
    console.print(table)
    for child in view.children:
        console.print(
            f"child {child.id}  {child.workflow_id}  {_status(child.status)}", highlight=False
        )


def follow(
    t: Tether, run_id: str, runner: threading.Thread, console: Console, quiet: bool = False
) -> None:
    """Print each step as it is journaled and each change of status, until `runner` ends."""
    seen: set[tuple[str, int]] = set()
    last_shown: tuple[RunStatus, str] | None = None
    while True:
        alive = runner.is_alive()
        run = t.status(run_id)
        if not quiet:
            for e in t.engine.journal(run_id):
                if (e.step_id, e.attempt) in seen:
                    continue
                seen.add((e.step_id, e.attempt))
                mark = {"ok": "[green]✓[/]", "error": "[red]✗[/]"}.get(
                    e.status.value, "[yellow]↻[/]"
                )
                detail = "" if e.status is EntryStatus.OK else f"  {_short(e.error, 80)}"
                console.print(
                    f"  {mark} {e.kind.value:<6} {e.name:<28} "
                    f"{_ms(e.finished_at - e.started_at):>10}{detail}",
                    highlight=False,
                )
            # the waits are learnt just after the park is visible: a line when either changes
            shown = (run.status, _on(t, run_id))
            if shown != last_shown and run.status in (RunStatus.SLEEPING, RunStatus.WAITING):
                until = f" until {when(run.wake_at)}" if run.wake_at else ""
                console.print(f"  … {run.status.value}{shown[1]}{until}", highlight=False)
            last_shown = shown
        if not alive:
            return
        runner.join(0.2)
        time.sleep(0)


def _on(t: Tether, run_id: str) -> str:
    """What the run waits for, when it parked in this process: events with their match, or
    children (a worker elsewhere keeps that to itself; then only the time shows)."""
    parts = []
    for w in t.parked_on.get(run_id, []):
        if w.kind is WaitKind.EVENT:
            match = f" matching {json.dumps(w.match, sort_keys=True)}" if w.match else ""
            parts.append(f"event {w.event!r}{match}")
        elif w.kind is WaitKind.CHILD:
            parts.append(f"child run {w.child_id}")
    return f" for {', '.join(parts)}" if parts else ""


def run_json(t: Tether, run: RunRecord) -> dict[str, Any]:
    data = run.model_dump(mode="json", exclude={"input", "output"})
    data["output"] = t.output(run)
    return data


def print_outcome(t: Tether, run: RunRecord, console: Console) -> None:
    if run.status is RunStatus.COMPLETED:
        console.print(f"[green]completed[/] {run.id}", highlight=False)
        console.print(json.dumps(t.output(run), indent=2), highlight=False, markup=False)
    else:
        console.print(
            f"{_status(run.status)} {run.id}" + (f": {run.error}" if run.error else ""),
            highlight=False,
        )
    console.print(f"next: tether inspect {run.id}", highlight=False)
