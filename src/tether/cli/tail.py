"""`tether tail RUN`: a run's stream, live, from the start or an offset, until the run ends."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from tether.client import Tether
from tether.errors import ConfigurationError
from tether.settings import Settings

out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True)


def tail(
    run_id: str,
    key: Annotated[str, typer.Option("--key", "-k", help="The stream to read")] = "progress",
    offset: Annotated[int, typer.Option(min=0, help="Start at this offset")] = 0,
    follow: Annotated[
        bool, typer.Option("--follow/--no-follow", help="Wait for values until the run ends")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line")] = False,
) -> None:
    """Print a run's stream, one value a line, as the run writes it (`OFFSET VALUE`). A reader
    stopped with Ctrl-C resumes with `--offset` at the next offset it had not printed."""
    try:
        settings = Settings()
    except ValueError as e:
        raise ConfigurationError(f"invalid tether settings: {e}") from None
    with Tether(settings) as t:
        err.print(f"[dim]database: {t.database}[/]", highlight=False)
        try:
            for item in t.stream(run_id, key, offset, follow=follow):
                if as_json:
                    line = {"offset": item.offset, "attempt": item.attempt}
                    out.print(json.dumps({**line, "value": json.loads(item.value)}))
                else:
                    out.print(f"{item.offset} {item.value}")
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
