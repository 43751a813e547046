"""Tools by name, and tools by reference.

A model offered tools asks for one by name; a sandbox process, which shares no memory with the
worker, imports one by its `module:qualname` reference. `@tool` registers every definition in
the process-wide `tools` registry, so both lookups work for any tool whose module was imported.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator

from tether.errors import ConfigurationError
from tether.foundation.tools.contract import ToolDef


class ToolRegistry:
    """Tool definitions by name; a name belongs to one function."""

    def __init__(self) -> None:
        self._tools: dict[str, ToolDef] = {}

    def register(self, tool: ToolDef) -> None:
        known = self._tools.get(tool.name)
        # The same ref again is the same function re-imported (a reload, a test re-import).
        if known is not None and known.ref != tool.ref:
            raise ConfigurationError(
                f"two tools are named {tool.name!r}: {known.ref} and {tool.ref}; "
                "rename one with @tool(name=...)"
            )
        self._tools[tool.name] = tool

    def get(self, name: str) -> ToolDef:
        try:
            return self._tools[name]
        except KeyError:
            known = ", ".join(sorted(self._tools)) or "none"
            raise ConfigurationError(f"no tool named {name!r}; registered: {known}") from None

    def __iter__(self) -> Iterator[ToolDef]:
        return iter(sorted(self._tools.values(), key=lambda t: t.name))

    def __len__(self) -> int:
        return len(self._tools)


def load_ref(ref: str) -> ToolDef:
    """The ToolDef at `module:qualname`, imported if need be."""
    module_name, _, qualname = ref.partition(":")
    try:
        obj: object = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise ConfigurationError(f"cannot import tool {ref!r}: {e}") from e
    if not isinstance(obj, ToolDef):
        raise ConfigurationError(f"{ref!r} is {obj!r}, not a function decorated with @tool")
    return obj


tools = ToolRegistry()
