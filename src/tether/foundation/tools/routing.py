"""Lanes per persistence class, with per-tool overrides: one ToolRunner, several lane backends.

`Settings.tools` (tether.toml's `tools`, `[tools.lanes]` and `[tools.overrides]`) names a
backend for each persistence class (the rest fall to its default) and for single tools. The
router is itself a `LaneBackend`, so the runner and its replay rules do not know there are
several. Every mapping is checked when the router is built, which a worker, `tether run
--wait` and `tether serve` do before any run starts: the backend must be installed, able to
start (its SDK and key), and serve each class it is mapped to, so a mistake is one
ConfigurationError then, not a failure at some run's first call. An override naming a tool no
loaded workflow registers is a warning only: the tool may live in a module this process does
not import. Each backend is opened once however many mappings name it, and keeps its own
machinery (the local lanes' fork server, a vendor's client).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from tether.errors import ConfigurationError
from tether.foundation.loader import open_backend
from tether.foundation.tools.contract import (
    Lane,
    LaneBackend,
    LaneResult,
    LeaseBound,
    PersistenceClass,
    ToolDef,
    ToolInvocation,
)
from tether.foundation.tools.registry import tools
from tether.settings import Settings, ToolLanes

log = logging.getLogger(__name__)


def _where(config: ToolLanes, persistence: PersistenceClass) -> str:
    """The setting that maps the class, as a user would look for it."""
    if persistence.value in config.lanes:
        return (
            f"[tools.lanes] {persistence.value} = {config.lanes[persistence.value]!r} "
            f"(TETHER_TOOLS__LANES__{persistence.value.upper()})"
        )
    return f"tools = {config.default!r} (the default lane, TETHER_TOOLS) for {persistence.value}"


class LaneRouter:
    """Sends each call to the backend its tool is mapped to."""

    def __init__(
        self, backends: Mapping[str, LaneBackend], config: ToolLanes, registered: Iterable[ToolDef]
    ) -> None:
        self._backends = dict(backends)
        self._by_class = {p: config.lanes.get(p.value, config.default) for p in PersistenceClass}
        self._overrides = dict(config.overrides)
        for persistence, name in self._by_class.items():
            self._check(name, persistence, _where(config, persistence))
        # the backends that may hold something for a run between its calls (a session, a
        # process bound to its lease): only they hear of its park and end, so a vendor that
        # runs only one-shot calls is not asked about every run that parks
        bound = {name: b for name, b in self._backends.items() if isinstance(b, LeaseBound)}
        self._per_run = set(bound) | {self._by_class[PersistenceClass.PERSISTENT_SESSION]}
        # told of every lease renewal of every run: found once here, not by an isinstance
        # against a runtime Protocol (a check of each member) on every renewal
        self._lease_bound = list(bound.values())
        tools = {tool.name: tool for tool in registered}
        for tool_name, name in self._overrides.items():
            tool = tools.get(tool_name)
            if tool is None:
                log.warning(
                    "[tools.overrides] %s = %r: no loaded workflow registers a tool named %r; "
                    "the override applies if one is loaded later",
                    tool_name, name, tool_name,
                )  # fmt: skip
                self._per_run.add(name)  # its class is not known yet
                continue
            self._check(name, tool.persistence, f"[tools.overrides] {tool_name} = {name!r}")
            if tool.persistence is PersistenceClass.PERSISTENT_SESSION:
                self._per_run.add(name)
        self._lanes = {p: _RoutedLane(self, p) for p in PersistenceClass}

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> LaneRouter:
        """Opens every backend the settings name, once each, then checks every mapping against
        the tools registered so far (the loaded workflows')."""
        config = settings.tools
        names = {config.default, *config.lanes.values(), *config.overrides.values()}
        backends: dict[str, LaneBackend] = {}
        for name in sorted(names):
            try:
                backends[name] = open_backend("tools", name, LaneBackend, settings)
            except ConfigurationError as e:
                raise ConfigurationError(f"{_mapped_by(config, name)}: {e}") from e
        return cls(backends, config, tools, **options)

    @property
    def backends(self) -> Mapping[str, LaneBackend]:
        return MappingProxyType(self._backends)

    def backend_for(self, tool: ToolDef) -> LaneBackend:
        return self._backends[self._overrides.get(tool.name, self._by_class[tool.persistence])]

    def _check(self, name: str, persistence: PersistenceClass, where: str) -> None:
        try:
            self._backends[name].lane(persistence)
        except ConfigurationError as e:
            raise ConfigurationError(f"{where}: {e}") from None

    def lane(self, persistence: PersistenceClass) -> Lane:
        return self._lanes[persistence]

    async def park(self, run_id: str) -> None:
        await asyncio.gather(*(self._backends[n].park(run_id) for n in sorted(self._per_run)))

    async def end_run(self, run_id: str) -> None:
        await asyncio.gather(*(self._backends[n].end_run(run_id) for n in sorted(self._per_run)))

    async def close(self) -> None:
        for backend in self._backends.values():
            await backend.close()

    def renew(self, run_id: str, until: float) -> None:
        for backend in self._lease_bound:
            backend.renew(run_id, until)

    def lease_lost(self, run_id: str) -> None:
        for backend in self._lease_bound:
            backend.lease_lost(run_id)


def _mapped_by(config: ToolLanes, name: str) -> str:
    """Every setting that names backend `name`, for the message when it cannot be opened."""
    where = [f"tools.lanes.{cls} = {name!r}" for cls, n in config.lanes.items() if n == name]
    where += [f"tools.overrides.{tool} = {name!r}" for tool, n in config.overrides.items()
              if n == name]  # fmt: skip
    if config.default == name:
        where.insert(0, f"tools = {name!r}")
    return "; ".join(where)


class _RoutedLane:
    """The lane of one persistence class: each call goes to its tool's backend."""

    def __init__(self, router: LaneRouter, persistence: PersistenceClass) -> None:
        self._router, self._persistence = router, persistence

    async def run(self, invocation: ToolInvocation) -> LaneResult:
        backend = self._router.backend_for(invocation.tool)
        return await backend.lane(self._persistence).run(invocation)
