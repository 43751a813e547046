"""`tether fork RUN --from-step STEP`: a new run that replays RUN up to that step, then runs on."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

from tether.client import Tether
from tether.errors import ConfigurationError
from tether.settings import Settings

out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)


def fork(
    run_id: str,
    from_step: Annotated[
        str, typer.Option("--from-step", help="The step id, as `tether inspect` shows it")
    ],
    version: Annotated[
        str | None, typer.Option(help="Run the fork under this version of the workflow")
    ] = None,
    cancel_original: Annotated[
        bool, typer.Option("--cancel-original", help="Fork a live run, cancelling it")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before forking")] = False,
) -> None:
    """Fork a run from a step: the new run keeps every entry that finished before it (tool
    results included, so those calls are not made again) and runs on from there. The old run,
    its costs and its budget spend stay as they are."""
    try:
        settings = Settings()
    except ValueError as e:
        raise ConfigurationError(f"invalid tether settings: {e}") from None
    with Tether(settings) as t:
        err.print(f"[dim]database: {t.database}[/]")
        plan = t.plan_fork(run_id, from_step, cancel_original=cancel_original)
        out.print(f"fork of {run_id} from step {from_step}: keeps {len(plan.kept)} entries")
        if plan.calls_again:
            out.print(f"tool calls made again, with new keys: {', '.join(plan.calls_again)}")
        if plan.unsafe_again:
            out.print(f"[bold]unsafe_on_replay, sent again:[/] {', '.join(plan.unsafe_again)}")
            if not yes and sys.stdin.isatty() and not typer.confirm("fork anyway?"):
                raise typer.Exit(1)
        new_id = t.fork(run_id, from_step, version=version, cancel_original=cancel_original)
        out.print(f"{new_id}: pending (forked from {run_id} at {from_step})")
