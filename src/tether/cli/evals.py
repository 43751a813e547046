"""`tether eval ...`: golden cases run under a candidate, captured from runs, and gated.

tether eval run WORKFLOW [--candidate FILE] [--ref REF]     score every golden case
tether eval capture RUN [--tag T]                           a finished run -> a case file
tether eval gate --baseline REF --candidate REF             exit 1 on a regression
tether eval override --baseline REF --candidate REF --reason TEXT   (needs an I8 token)
tether replay [--last 50] [--workflow W] [--from FILE]      recorded runs vs installed code
tether export FILE [--last N] [--workflow W]                runs -> a recording for replay
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tether.client import Tether
from tether.errors import NoEvalResults
from tether.evals.candidate import eval_settings, load_candidate
from tether.evals.capture import capture
from tether.evals.cases import load_cases, write_case
from tether.evals.harness import revision, run_cases
from tether.evals.judging import Judge, check_judge_family
from tether.evals.recording import Recording, export_runs
from tether.evals.replay import LiveRuns, replay_runs
from tether.foundation.blobs.contract import BlobStore
from tether.foundation.evals.contract import CaseResult, EvalStore, Override
from tether.foundation.evals.gate import D10_POINTS, DEFAULT_WINDOW, GateReport, run_gate
from tether.foundation.evals.store import open_eval_store
from tether.foundation.identity.config import open_identity
from tether.foundation.loader import open_backend
from tether.foundation.models.config import load_config
from tether.foundation.secrets.config import open_secrets
from tether.runtime.foundations import Foundations
from tether.runtime.registry import REGISTRY
from tether.settings import Settings, redact_dsn

eval_app = typer.Typer(
    help="Golden cases, candidate evals and the regression gate (I5).", no_args_is_help=True
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _store(settings: Settings) -> EvalStore:
    err.print(f"[dim]eval results: {redact_dsn(settings.database_url_for('evals'))}[/]")
    return open_eval_store(settings)


@eval_app.command("run")
def eval_run(
    workflow: Annotated[str, typer.Argument(help="NAME or NAME@X.Y.Z")],
    candidate: Annotated[
        Path | None, typer.Option(help="TOML with the model_routes to evaluate")
    ] = None,
    ref: Annotated[
        str | None, typer.Option(help="Label the results are kept under (default: git HEAD)")
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Cases run at once")] = 4,
    timeout: Annotated[float, typer.Option(help="Seconds a case may take")] = 60.0,
) -> None:
    """Run every golden case of WORKFLOW: tools from fixtures, models on the candidate's
    routes; judge the outputs and keep the scores under REF."""
    settings = Settings()
    routing = load_candidate(candidate) if candidate else {}
    REGISTRY.load_modules(settings.workflows)
    wf = REGISTRY.get(workflow)
    cases = load_cases(wf)
    judged = eval_settings(settings, routing, settings.data_path)
    check_judge_family(load_config(judged).table)  # INV-3 before any case runs
    # the judge's calls are guarded and priced in the settings' own stores, as the eval's
    foundations = Foundations(settings, open_backend("blobs", settings.blobs, BlobStore, settings))
    store = _store(settings)
    try:
        judge = Judge(foundations.models, foundations.guards, foundations.cost, store)
        runs = run_cases(settings, wf, cases, routing, concurrency=concurrency, timeout=timeout)
        label = ref or revision()
        eval_run = uuid.uuid4().hex[:12]
        results = judge.score_all(runs, eval_run, label, wf.name)
        store.record(results)
        spent = foundations.cost.run_total(eval_run)
    finally:
        store.close()
        foundations.close()
    out.print(_results_table(wf.id, label, results))
    out.print(f"judge: {spent.calls} calls, ${spent.usd} (eval run {eval_run})", highlight=False)


def _results_table(workflow: str, ref: str, results: list[CaseResult]) -> Table:
    table = Table(title=f"{workflow} under {ref}")
    for column in ("case", "cohorts", "score", "verdict", "why"):
        table.add_column(column)
    for r in results:
        table.add_row(
            r.case_id, ", ".join(r.cohorts), f"{r.score:.2f}", "pass" if r.passed else "FAIL",
            r.error or r.reason,
        )  # fmt: skip
    return table


@eval_app.command("capture")
def eval_capture(
    run_id: str,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Cohort (repeatable)")] = None,
    case_id: Annotated[str | None, typer.Option("--id", help="Case id (default: run-ID)")] = None,
) -> None:
    """Turn a completed run into a golden case file beside its workflow."""
    with Tether(Settings()) as t:
        captured = capture(t, run_id, tag or [], case_id)
        path = write_case(captured.workflow, captured.case)
    case = captured.case
    out.print(
        f"case {case.id}: {len(case.fixtures)} tool results as fixtures, {len(case.answers)} "
        f"answers to waits; wrote {path}",
        highlight=False,
    )


def _gate_table(report: GateReport) -> Table:
    sample = "latest eval run" if report.release else f"last {report.window}"
    table = Table(title=f"{report.workflow}: {report.candidate} vs {report.baseline} ({sample})")
    for column in ("cohort", "baseline", "candidate", "delta", "interval", "verdict"):
        table.add_column(column)

    def mean(value: float | None, n: int) -> str:
        return "no results" if value is None else f"{value:.3f} (n={n})"

    for c in report.cohorts:
        table.add_row(
            c.cohort, mean(c.baseline_mean, c.baseline_n), mean(c.candidate_mean, c.candidate_n),
            "-" if c.delta is None else f"{c.delta:+.3f}",
            "-" if c.low is None or c.high is None else f"[{c.low:+.3f}, {c.high:+.3f}]",
            "pass" if c.passed else "FAIL",
        )  # fmt: skip
    return table


@eval_app.command("gate")
def eval_gate(
    baseline: Annotated[str, typer.Option(help="The ref to compare against")],
    candidate: Annotated[str, typer.Option(help="The ref under review")],
    workflow: Annotated[
        list[str] | None, typer.Option("--workflow", "-w", help="Default: every one with results")
    ] = None,
    window: Annotated[int, typer.Option(min=1, help="Results per cohort and side")] = (
        DEFAULT_WINDOW
    ),
    release: Annotated[
        bool, typer.Option(help="A release: the candidate's latest eval run is its sample")
    ] = False,
) -> None:
    """Compare the candidate's scores with the baseline's, cohort by cohort; exit 1 if any
    cohort regressed (the worst decides) and no override was recorded."""
    store = _store(Settings())
    try:
        names = workflow or store.workflows([baseline, candidate])
        reports = [run_gate(store, w, baseline, candidate, window, release) for w in names]
    finally:
        store.close()
    if not reports:
        raise NoEvalResults([baseline, candidate])
    for report in reports:
        out.print(_gate_table(report))
        g = report.golden
        if g.delta is not None:
            verdict = "within" if report.within_d10 else "outside"
            out.print(
                f"golden set: {g.candidate_mean:.3f} vs {g.baseline_mean:.3f}, delta "
                f"{g.delta:+.3f}: {verdict} D10's {D10_POINTS * 100:g} points",
                highlight=False,
            )
    regressed = [r.workflow for r in reports if r.regressed]
    overrides = reports[0].overrides
    for o in overrides:
        out.print(
            f"override by {o.subject} at {o.at:%Y-%m-%d %H:%M} UTC (baseline {o.baseline}): "
            f"{o.reason}",
            highlight=False,
        )
    if not regressed:
        out.print("gate: pass", highlight=False)
    elif overrides:
        out.print(f"gate: regressed in {', '.join(regressed)}; passed by override", highlight=False)
    else:
        out.print(f"gate: FAIL, regressed in {', '.join(regressed)}", highlight=False)
        raise typer.Exit(1)


@eval_app.command("override")
def eval_override(
    baseline: Annotated[str, typer.Option(help="The ref the gate compared against")],
    candidate: Annotated[str, typer.Option(help="The ref to let through")],
    reason: Annotated[str, typer.Option(help="Why the regression is accepted")],
    token: Annotated[
        str, typer.Option(envvar="TETHER_TOKEN", help="Your I8 token: the override names you")
    ],
) -> None:
    """Let a candidate through a failing gate; the audit row names who, when and why."""
    settings = Settings()
    if not reason.strip():
        raise typer.BadParameter("give a reason: it is what the audit row is for")
    who = open_identity(settings, open_secrets(settings)).verify(token)
    store = _store(settings)
    try:
        store.add_override(
            Override(baseline=baseline, candidate=candidate, subject=who.subject,
                     reason=reason.strip(), at=datetime.now(UTC))
        )  # fmt: skip
    finally:
        store.close()
    out.print(f"override recorded: {candidate} by {who.subject}", highlight=False)


def replay(
    last: Annotated[int, typer.Option(min=1, help="How many recent runs to replay")] = 50,
    workflow: Annotated[str | None, typer.Option("--workflow", "-w")] = None,
    source: Annotated[
        Path | None,
        typer.Option(
            "--from", help="A recording written by `tether export` (default: the database)"
        ),
    ] = None,
) -> None:
    """Re-execute the journals of the last finished or parked runs against the code installed
    now, in memory (no commit, no tool, no model); exit 1 if any would hit a
    NonDeterminismError or no registered version can resume it."""
    settings = Settings()
    if source is not None:
        err.print(f"[dim]recording: {source}[/]", highlight=False)
        with Recording(source) as recording:
            replayed = replay_runs(settings, recording, last, workflow)
    else:
        with Tether(settings) as t:
            err.print(f"[dim]database: {t.database}[/]", highlight=False)
            replayed = replay_runs(settings, LiveRuns(t), last, workflow)
    table = Table(title=f"replay of the last {len(replayed)} runs against the installed code")
    for column in ("run", "workflow", "status", "replay"):
        table.add_column(column)
    for r in replayed:
        table.add_row(r.run.id, r.run.workflow_id, r.run.status.value, r.problem or "ok")
    out.print(table)
    broken = [r for r in replayed if not r.ok]
    out.print(
        f"replay: {len(replayed) - len(broken)} of {len(replayed)} runs replay faithfully",
        highlight=False,
    )
    if broken:
        raise typer.Exit(1)


def export(
    file: Annotated[Path, typer.Argument(help="The recording to write (a new SQLite file)")],
    last: Annotated[int, typer.Option(min=1, help="How many recent runs to export")] = 200,
    workflow: Annotated[str | None, typer.Option("--workflow", "-w")] = None,
) -> None:
    """Write the last finished or parked runs (rows, journals, tool-call rows, values
    resolved) to a portable recording that `tether replay --from FILE` reads anywhere."""
    with Tether(Settings()) as t:
        err.print(f"[dim]database: {t.database}[/]", highlight=False)
        runs = LiveRuns(t).runs(last, workflow)
        done = export_runs(t, runs, file)
    out.print(
        f"exported {done.runs} runs ({done.entries} journal entries, {done.tool_calls} tool "
        f"calls) to {file}",
        highlight=False,
    )
