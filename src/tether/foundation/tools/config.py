"""Picks I1's backends from settings through the one loader: the store of tool-call results by
the tools database URL (`TETHER_TOOLS_DATABASE_URL`, else the shared one), the lanes by
`Settings.tools` (default "local" for every persistence class; routing.py)."""

from __future__ import annotations

from tether.foundation.loader import backend_for_url, open_backend
from tether.foundation.tools.results import ToolCallStore
from tether.foundation.tools.routing import LaneRouter
from tether.settings import Settings


def open_tool_results(settings: Settings) -> ToolCallStore:
    """The tool_call_results store at `TETHER_TOOLS_DATABASE_URL` (or the shared database)."""
    url = settings.database_url_for("tools")
    name = backend_for_url("tool_results", url, database="tools")
    return open_backend("tool_results", name, ToolCallStore, settings)


def open_lanes(settings: Settings) -> LaneRouter:
    """The lane backends `Settings.tools` names, behind one router that has checked every
    mapping."""
    return LaneRouter.from_settings(settings)
