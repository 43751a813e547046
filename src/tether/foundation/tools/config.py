"""Picks I1's backends from settings: the store by the tools database URL's scheme, the lanes
by `Settings.tools` (default "local"), both through entry points so a third party can ship
either as its own package."""

from __future__ import annotations

from typing import Any, cast

from tether.errors import ConfigurationError
from tether.foundation.loader import load_backend
from tether.foundation.tools.contract import LaneBackend
from tether.foundation.tools.results import ToolCallStore
from tether.settings import redact_dsn

_STORE_BY_SCHEME = {"sqlite": "sqlite", "postgresql": "postgres", "postgres": "postgres",
                    "memory": "memory"}  # fmt: skip


def open_tool_results(settings: Any) -> ToolCallStore:
    """The tool_call_results store at `TETHER_TOOLS_DATABASE_URL` (or the shared database)."""
    url = settings.database_url_for("tools")
    name = _STORE_BY_SCHEME.get(url.partition(":")[0])
    if name is None:
        raise ConfigurationError(
            f"tool results database {redact_dsn(url)!r}: expected a sqlite:///, postgresql:// "
            "or memory: URL"
        )
    backend = load_backend("tool_results", name, ToolCallStore)
    return cast(ToolCallStore, backend.from_settings(settings))


def open_lanes(settings: Any) -> LaneBackend:
    """The lane backend named by `Settings.tools`; it checks it can run when constructed."""
    backend = load_backend("tools", settings.tools, LaneBackend)
    return cast(LaneBackend, backend.from_settings(settings))
