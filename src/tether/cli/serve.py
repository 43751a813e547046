"""`tether serve`: the HTTP API and the web UI over this configuration's database.

Without a configured identity provider the server signs sessions with a key of its own and
binds loopback only: anyone who could reach another address would meet a server whose only
door is a link printed on this terminal, and a misconfigured deployment should fail loudly
rather than serve runs to a network it did not mean to.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from tether.client import Tether
from tether.errors import ConfigurationError
from tether.settings import Settings

err = Console(stderr=True, soft_wrap=True)


def serve(
    host: Annotated[str, typer.Option(help="Address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535)] = 8000,
) -> None:
    """Serve the HTTP API and the web UI; prints a one-time login link for a browser."""
    # Imported here: every other command would otherwise pay for loading FastAPI and uvicorn.
    import uvicorn

    from tether.server.app import create_app
    from tether.server.auth import for_tether, is_loopback

    with Tether(Settings()) as t:
        t.check_tools()
        auth = for_tether(t)
        try:
            if not auth.configured and not is_loopback(host):
                raise ConfigurationError(
                    f"refusing to bind {host}: no identity provider is configured, so the "
                    "only way in is a login link printed here, and the server must not be "
                    "reachable from elsewhere. Bind 127.0.0.1, or configure I8 (set "
                    "TETHER_JWT_KEY, or an [identity] table in tether.toml) and give callers "
                    "tokens from `tether token issue`"
                )
            err.print(f"[dim]database: {t.database}[/]", highlight=False)
            shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
            err.print(
                f"tether serving on http://{shown}:{port}\n"
                f"sign in (once) at: http://{shown}:{port}/login?token={auth.login_link()}",
                highlight=False,
            )
            uvicorn.run(create_app(t, auth), host=host, port=port, log_level="warning")
        finally:
            auth.close()
