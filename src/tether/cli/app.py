"""`tether ...`: a thin typer layer over `tether.Tether`.

Every command says which database it uses (on stderr, so `--json` output stays clean). Any
`TetherError` becomes one line on stderr and exit code 2; `run --wait` exits 0 when the run
completed and 1 when it failed, was cancelled or needs a person.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import sys
import threading
import time
import traceback
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from tether.cli import views
from tether.cli.approvals import approvals_app
from tether.cli.evals import eval_app, export, replay
from tether.cli.fork import fork
from tether.cli.queues import queues
from tether.cli.serve import serve
from tether.cli.tail import tail
from tether.cli.triggers import triggers
from tether.client import Tether
from tether.errors import DatabaseUnavailable, InvalidInput, TetherError
from tether.foundation.checkpoint.contract import RunStatus
from tether.foundation.checkpoint.starts import Debounce
from tether.foundation.loader import open_backend
from tether.foundation.secrets.redaction import RedactingFilter
from tether.foundation.trace.contract import TraceSink
from tether.foundation.trace.dump import load_dump
from tether.settings import Settings

app = typer.Typer(
    name="tether",
    help="Durable, observable background agents: start, watch, cancel and retry runs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

_DEBUG = {"on": False}


@app.callback()
def _options(
    debug: Annotated[
        bool,
        typer.Option("--debug", envvar="TETHER_DEBUG", help="Show an error's full traceback"),
    ] = False,
) -> None:
    _DEBUG["on"] = debug


JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def _fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _open(quiet: bool = False) -> Tether:
    t = Tether(Settings())  # a bad setting is one ConfigurationError
    if not quiet:
        err.print(f"[dim]database: {t.database}[/]", highlight=False)
    return t


def _open_when_reachable() -> Tether:
    delay = 0.5
    while True:
        try:
            return _open()
        except DatabaseUnavailable as e:
            err.print(f"{e}; trying again in {delay:.1f}s", highlight=False)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


def _parse_json(text: str | None, what: str) -> Any:
    """JSON given inline or as `@path`."""
    if text is None:
        return {}
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text()
        except OSError as e:
            raise InvalidInput(what, f"cannot read {text[1:]}: {e.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidInput(what, f"not valid JSON: {e}") from None


@app.command()
def run(
    workflow: Annotated[str, typer.Argument(help="NAME (highest version) or NAME@X.Y.Z")],
    input: Annotated[
        str | None, typer.Option("--input", "-i", help="Input as JSON, or @file.json")
    ] = None,
    key: Annotated[
        str | None, typer.Option(help="Idempotency key: the same key returns the same run")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Execute here and follow to the end")
    ] = False,
    token: Annotated[
        str | None,
        typer.Option(envvar="TETHER_TOKEN", help="Your I8 token: the run records who started it"),
    ] = None,
    queue: Annotated[
        str | None, typer.Option(help="A queue the workflows declare (else the workflow's)")
    ] = None,
    concurrency_key: Annotated[
        str | None, typer.Option(help="The run's key within its queue's per-key limit")
    ] = None,
    priority: Annotated[int, typer.Option(help="Claimed before older runs of its queue")] = 0,
    debounce: Annotated[
        str | None,
        typer.Option(help="KEY=SECONDS: one run for a burst of starts with KEY, after the last"),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Start a run. With --wait, execute it here (or follow the worker that has it)."""
    with _open() as t:
        data = _parse_json(input, f"--input for {workflow}")
        if wait:  # a bad lane mapping stops here, before a run exists
            t.check_tools()
        run_id = t.start(
            workflow, data, key=key, token=token, queue=queue, concurrency_key=concurrency_key,
            priority=priority, debounce=_debounce(debounce),
        )  # fmt: skip
        if not wait:
            if as_json:
                out.print_json(json.dumps({"id": run_id}))
            else:
                out.print(f"started {run_id}  (tether inspect {run_id})", highlight=False)
            return
        _wait(t, run_id, as_json)


def _debounce(option: str | None) -> Debounce | None:
    if option is None:
        return None
    key, sep, seconds = option.rpartition("=")
    try:
        period = float(seconds)
    except ValueError:
        period = math.nan
    if not sep or math.isnan(period):
        raise InvalidInput("--debounce", f"expected KEY=SECONDS, e.g. ticket-7=30, got {option!r}")
    return Debounce(key=key, period=period)


def _wait(t: Tether, run_id: str, as_json: bool) -> NoReturn:
    """Execute the run here (or follow the worker that has it) with progress shown; exit 0
    when it completed, 1 otherwise. Ctrl-C detaches: the run goes on."""
    stop = threading.Event()
    result: dict[str, Any] = {}

    def execute() -> None:
        try:
            result["run"] = t.run(run_id, stop=stop)
        except BaseException as e:  # reported on the main thread
            result["error"] = e

    runner = threading.Thread(target=execute, name="tether-run-wait", daemon=True)
    runner.start()
    try:
        views.follow(t, run_id, runner, out, quiet=as_json)
    except KeyboardInterrupt:
        stop.set()
        runner.join(timeout=60)
        err.print(f"detached; the run goes on: tether inspect {run_id}", highlight=False)
        raise typer.Exit(130) from None
    runner.join()
    if "error" in result:
        raise result["error"]
    final = result["run"]
    if as_json:
        out.print_json(json.dumps(views.run_json(t, final)))
    else:
        views.print_outcome(t, final, out)
    raise typer.Exit(0 if final.status is RunStatus.COMPLETED else 1)


@app.command("wait")
def wait_for(
    run_id: str,
    as_json: JsonFlag = False,
) -> None:
    """Follow an existing run to its end: execute it here, or follow the worker that has it.
    Exit 0 when it completed, 1 when it failed, was cancelled or needs a person."""
    with _open() as t:
        t.status(run_id)  # an unknown run is one line, before anything runs
        _wait(t, run_id, as_json)


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1)] = 4,
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Exit once nothing is runnable")
    ] = False,
) -> None:
    """Claim and execute runs until stopped. SIGTERM or Ctrl-C: stop claiming, let each run
    reach its next step boundary, release what is unfinished, exit. A worker started before its
    database waits for it, one line a try, as it waits out an outage later."""
    with _open_when_reachable() as t:
        w = t.worker(concurrency)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: w.stop())
        err.print(
            f"worker {w.owner}: {concurrency} slots for {', '.join(t.registry.ids())}",
            highlight=False,
        )
        executed = w.run(until_idle=until_idle)
        err.print(f"worker stopped after {executed} executions", highlight=False)


@app.command()
def runs(
    status: Annotated[
        list[RunStatus] | None, typer.Option("--status", "-s", help="Filter (repeatable)")
    ] = None,
    workflow: Annotated[str | None, typer.Option("--workflow", "-w")] = None,
    stranded: Annotated[
        bool, typer.Option(help="Only runs no registered version can resume")
    ] = False,
    limit: Annotated[int, typer.Option(min=1)] = 50,
    as_json: JsonFlag = False,
) -> None:
    """List runs, newest first."""
    with _open() as t:
        found = t.list(statuses=status, workflow=workflow, limit=limit, stranded=stranded)
        if as_json:
            out.print_json(json.dumps([r.model_dump(mode="json") for r in found]))
        else:
            out.print(views.runs_table(found, t.costs([r.id for r in found])))
            for wid, total in t.workflow_costs([r.workflow_id for r in found]).items():
                if total.calls:
                    out.print(
                        f"{wid}: ${total.usd:.4f} over {total.calls} model calls, all runs",
                        highlight=False,
                    )


@app.command()
def inspect(run_id: str, as_json: JsonFlag = False) -> None:
    """Show a run and every step: attempts, input, output, error, timing."""
    with _open() as t:
        view = t.inspect(run_id)
        if as_json:
            out.print_json(view.model_dump_json())
        else:
            views.print_inspect(t, view, out)


@app.command()
def cancel(run_id: str) -> None:
    """Cancel a run and its children: parked ones now, running ones at their next step."""
    with _open() as t:
        run = t.cancel(run_id)
        pending = " (stops at its next step)" if run.status is RunStatus.RUNNING else ""
        out.print(f"{run_id}: {run.status.value}{pending}", highlight=False)


@app.command()
def retry(run_id: str) -> None:
    """Resume a failed run from its failed step; finished steps are not run again."""
    with _open() as t:
        run = t.retry(run_id)
        out.print(
            f"{run_id}: {run.status.value}; a worker (or `tether wait {run_id}`) resumes it",
            highlight=False,
        )


@app.command("send-event")
def send_event(
    name: str,
    data: Annotated[str | None, typer.Option("--data", "-d", help="JSON object or @file")] = None,
    run_id: Annotated[str | None, typer.Option("--run", help="Deliver to this run only")] = None,
) -> None:
    """Send an event: waiting runs whose `match` fits wake now."""
    with _open() as t:
        receipt = t.send_event(name, _parse_json(data, f"--data for event {name!r}"), run=run_id)
        woken = ", ".join(receipt.woken) or "no run was waiting; held for later waits"
        out.print(f"event {receipt.event_id}: {woken}", highlight=False)


@app.command()
def resolve(
    run_id: str,
    step: Annotated[str, typer.Option("--step", help="The step id the run is parked on")],
    result: Annotated[
        str | None, typer.Option("--result", help="JSON to use as the call's result")
    ] = None,
    skip: Annotated[
        bool, typer.Option("--skip", help="Treat the call as done, result null")
    ] = False,
    rerun: Annotated[bool, typer.Option("--rerun", help="Run the call once more")] = False,
) -> None:
    """Decide on a run parked as needs_attention by an interrupted unsafe tool call."""
    with _open() as t:
        value = None if result is None else _parse_json(result, "--result")
        run = t.resolve(run_id, step, result=value, skip=skip, rerun=rerun)
        out.print(
            f"{run_id}: {run.status.value}; a worker (or `tether wait {run_id}`) resumes it",
            highlight=False,
        )


app.add_typer(eval_app, name="eval")
app.add_typer(approvals_app, name="approvals")
app.command("replay")(replay)
app.command("export")(export)

token_app = typer.Typer(help="Identity tokens (I8).", no_args_is_help=True)
app.add_typer(token_app, name="token")


@token_app.command("issue")
def token_issue(
    subject: str,
    role: Annotated[list[str] | None, typer.Option("--role", help="Repeatable")] = None,
    ttl: Annotated[float | None, typer.Option(help="Seconds until it expires")] = None,
) -> None:
    """Print a signed token for SUBJECT (use it as --token or TETHER_TOKEN)."""
    with _open(quiet=True) as t:
        out.print(t.issue_token(subject, role or [], ttl), highlight=False, soft_wrap=True)


trace_app = typer.Typer(help="Trace dumps (I4).", no_args_is_help=True)
app.add_typer(trace_app, name="trace")


@trace_app.command("load")
def trace_load(
    dump: Annotated[
        str, typer.Argument(help="A traces.jsonl file, a folder of them, or s3://bucket/prefix")
    ],
    to: Annotated[str, typer.Option("--to", help="The trace backend: otlp, phoenix, langfuse")],
) -> None:
    """Replay a JSONL trace dump into a trace backend with its original ids and times (a
    trace written while offline appears in Phoenix later). Malformed lines are skipped."""
    settings = Settings()
    sink = open_backend("trace", to, TraceSink, settings)
    try:
        report = load_dump(dump, sink, settings)
    finally:
        sink.close()
    for where in report.skipped:
        err.print(f"skipped {where}", highlight=False, soft_wrap=True, markup=False)
    out.print(
        f"loaded {report.loaded} spans into {to}, skipped {len(report.skipped)} malformed lines",
        highlight=False,
    )
    if not report.delivered:
        _fail(f"the {to} collector did not take every span (see the warning above)", 1)


budget = typer.Typer(help="Run budgets (I10).", no_args_is_help=True)
app.add_typer(budget, name="budget")


@budget.command("raise")
def budget_raise(
    run_id: str,
    usd: Annotated[float, typer.Option("--usd", help="Dollars to add to the run's cost cap")],
) -> None:
    """Raise the cost cap of a run's tree (its root's budget); every run of the tree paused at
    the cap goes on."""
    with _open() as t:
        run = t.raise_budget(run_id, usd)
        root = run.meta.get("root_id") or run.id
        whose = "" if root == run.id else f" (the budget of its tree's root, {root})"
        out.print(
            f"{run_id}: budget raised by ${usd:g}{whose}; {run.status.value}", highlight=False
        )


schedule = typer.Typer(help="Cron schedules that start runs.", no_args_is_help=True)
app.add_typer(schedule, name="schedule")


@schedule.command("add")
def schedule_add(
    name: str,
    cron: Annotated[str, typer.Option("--cron", help='e.g. "*/15 * * * *"')],
    workflow: Annotated[str, typer.Option("--workflow", "-w")],
    input: Annotated[str | None, typer.Option("--input", "-i", help="JSON or @file")] = None,
    catchup: Annotated[
        str, typer.Option(help="Ticks missed while no worker ran: skip | once")
    ] = "skip",
) -> None:
    """Add (or replace) a schedule; running workers fire its ticks, each tick once."""
    with _open() as t:
        s = t.add_schedule(name, cron, workflow, _parse_json(input, "--input"), catchup)
        out.print(
            f"schedule {s.name}: {s.workflow} at {s.cron}; next {views.when(s.next_at)}",
            highlight=False,
        )


@schedule.command("list")
def schedule_list(as_json: JsonFlag = False) -> None:
    """List schedules and their next tick."""
    with _open() as t:
        found = t.schedules()
        if as_json:
            out.print_json(json.dumps([s.model_dump() for s in found]))
        else:
            out.print(views.schedules_table(found))


@schedule.command("remove")
def schedule_remove(name: str) -> None:
    """Remove a schedule; runs it started are not touched."""
    with _open() as t:
        t.remove_schedule(name)
        out.print(f"schedule {name} removed", highlight=False)


@app.command("prune")
def prune_runs(
    finished_before: Annotated[
        datetime, typer.Option("--finished-before", help="DATE or DATETIME (local time)")
    ],
    keep_thread_checkpoints: Annotated[
        int, typer.Option(min=1, help="Newest checkpoints kept of each LangGraph thread")
    ] = 10,
) -> None:
    """Delete runs that finished before DATE, their tool calls and unreferenced blobs, and
    LangGraph threads' older checkpoints with the messages only they held."""
    with _open() as t:
        r = t.prune(finished_before.timestamp(), keep_thread_checkpoints)
        out.print(
            f"pruned {r.runs} runs ({r.journal_entries} journal entries, {r.tool_calls} "
            f"tool calls, {r.events} old events); {r.blobs} blobs, "
            f"{r.bytes_freed / 1024:.1f} KiB freed; {r.thread_checkpoints} thread checkpoints "
            f"({r.thread_writes} writes), {r.thread_blobs} thread blobs",
            highlight=False,
        )


@app.command()
def workflows() -> None:
    """List the workflows this configuration registers."""
    with _open() as t:
        for wid in t.registry.ids():
            out.print(wid, highlight=False)


app.command()(serve)
app.command()(tail)
app.command()(fork)
app.command()(triggers)
app.command()(queues)


def _logging() -> None:
    """Warnings and errors to stderr, with every I7 secret struck out on the way."""
    handler = logging.StreamHandler()
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(handlers=[handler], level=logging.WARNING)


def main() -> None:
    """Entry point: tether's own errors are one line and exit 2, never a traceback."""
    _logging()
    try:
        code = app(standalone_mode=False)  # click returns typer.Exit's code in this mode
        sys.exit(code if isinstance(code, int) else 0)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except TetherError as e:
        if _DEBUG["on"] or os.environ.get("TETHER_DEBUG", "") not in ("", "0", "false"):
            traceback.print_exception(e)
        _exit_with(str(e))
    except typer.BadParameter as e:  # names the option: "Missing option '--step'"
        _exit_with(e.format_message())
    except typer.Abort as e:
        _exit_with(str(e) or "aborted")
    except Exception as e:  # click usage errors carry their own exit code
        from click.exceptions import ClickException

        if isinstance(e, ClickException):
            e.show()
            sys.exit(e.exit_code)
        raise


def _exit_with(message: str) -> NoReturn:
    try:
        _fail(message)
    except typer.Exit as e:
        sys.exit(e.exit_code)
