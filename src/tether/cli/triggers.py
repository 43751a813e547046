"""`tether triggers`: D1-D10 computed from this database, one row per decision."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from tether.client import Tether
from tether.errors import ConfigurationError
from tether.settings import Settings
from tether.triggers import State, measure, parse_window

out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True)
_STYLE = {State.FIRED: "bold yellow", State.NOT_FIRED: "green", State.NOT_MEASURABLE: "dim"}


def triggers(
    since: Annotated[str, typer.Option(help="How far back to measure: 30d, 12h, 90m")] = "30d",
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Compute each decision trigger (D1-D10) from the runs, journals, approvals and eval
    results in the window: its default, what switches it, the measured value and its source,
    and whether it fired. Exit 0 whatever fired: it informs a decision, it does not gate."""
    window = parse_window(since)
    try:
        settings = Settings()
    except ValueError as e:
        raise ConfigurationError(f"invalid tether settings: {e}") from None
    with Tether(settings) as t:
        err.print(f"[dim]database: {t.database}[/]", highlight=False)
        found = measure(t, window)
    if as_json:
        out.print(json.dumps([f.model_dump(mode="json") for f in found], indent=2))
        return
    out.print(f"decision triggers over the last {since}\n")
    for f in found:
        out.print(f"[bold]{f.id}[/] {f.decision}: [{_STYLE[f.state]}]{f.state.value}[/]")
        out.print(f"    default   {f.default}\n    switch    {f.switch}")
        out.print(f"    measured  {f.measured}\n    source    {f.source}\n    why       {f.why}\n")
