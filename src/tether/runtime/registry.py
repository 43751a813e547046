"""`@workflow` and the registry of what this process can run.

The decorator validates when applied (the signature, the version) and attaches a frozen
definition; running lives in the executor. A run is pinned to `name@version`; a definition may
declare `resumes=["1.2.*"]`, the explicit promise that it can take over parked runs of those
older versions — anything else stays stranded rather than running on the wrong code.
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, get_type_hints

from pydantic import TypeAdapter

from tether.errors import ConfigurationError, WorkflowImportError, WorkflowNotFound
from tether.foundation.checkpoint.contract import Accept
from tether.foundation.checkpoint.queues import Queue

_SEMVER = re.compile(r"^\d+\.\d+\.\d+$")


@dataclass(frozen=True)
class WorkflowDef:
    name: str
    version: str
    fn: Callable[..., Awaitable[Any]]
    input_type: Any
    output_type: Any
    input_adapter: TypeAdapter[Any] = field(repr=False, compare=False)
    output_adapter: TypeAdapter[Any] = field(repr=False, compare=False)
    resumes: tuple[str, ...] = ()
    queue: Queue | None = None
    # the run's concurrency key within its queue, from its validated input
    concurrency_key: Callable[[Any], str] | None = field(default=None, compare=False)

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def queue_name(self) -> str | None:
        return self.queue.name if self.queue is not None else None

    def accepts(self) -> list[Accept]:
        return [Accept(workflow=self.name, version=v) for v in (self.version, *self.resumes)]

    def can_run(self, version: str) -> bool:
        return version == self.version or any(fnmatch.fnmatchcase(version, p) for p in self.resumes)


class Registry:
    """Workflow definitions by name and version."""

    def __init__(self) -> None:
        self._defs: dict[str, dict[str, WorkflowDef]] = {}
        self._queues: dict[str, Queue] = {}

    def add(self, wf: WorkflowDef) -> None:
        if wf.queue is not None:
            self.add_queue(wf.queue)
        versions = self._defs.setdefault(wf.name, {})
        old = versions.get(wf.version)
        if old is not None and old.fn is not wf.fn and _qualname(old.fn) != _qualname(wf.fn):
            raise ConfigurationError(f"workflow {wf.id} is registered twice by different functions")
        versions[wf.version] = wf

    def get(self, ref: str) -> WorkflowDef:
        """`name` → its highest version; `name@X.Y.Z` → exactly that one."""
        name, _, version = ref.partition("@")
        versions = self._defs.get(name, {})
        if version:
            if version in versions:
                return versions[version]
        elif versions:
            return versions[max(versions, key=_semver_key)]
        raise WorkflowNotFound(ref, self.ids())

    def for_run(self, name: str, version: str) -> WorkflowDef | None:
        """The definition that may run a run pinned to name@version: the exact one, else the
        highest version whose `resumes` covers it."""
        versions = self._defs.get(name, {})
        if version in versions:
            return versions[version]
        takers = [d for d in versions.values() if d.can_run(version)]
        return max(takers, key=lambda d: _semver_key(d.version)) if takers else None

    def add_queue(self, queue: Queue) -> None:
        """Every worker enforces the limits it imported: one name, one set of limits."""
        old = self._queues.setdefault(queue.name, queue)
        if old != queue:
            raise ConfigurationError(
                f"queue {queue.name!r} is declared twice with different limits ({old} and "
                f"{queue}): declare it once and use that object everywhere"
            )

    def queue(self, name: str) -> Queue:
        if name not in self._queues:
            known = ", ".join(sorted(self._queues)) or "none"
            raise ConfigurationError(
                f"queue {name!r} is not declared in this process (declared: {known}); declare "
                "it with Queue(...) on a @workflow in a module the settings' workflows list"
            )
        return self._queues[name]

    def queues(self) -> list[Queue]:
        return sorted(self._queues.values(), key=lambda q: q.name)

    def accepts(self) -> list[Accept]:
        return [
            a for versions in self._defs.values() for d in versions.values() for a in d.accepts()
        ]

    def all(self) -> list[WorkflowDef]:
        return [d for versions in self._defs.values() for d in versions.values()]

    def ids(self) -> list[str]:
        return [d.id for versions in self._defs.values() for d in versions.values()]

    def load_modules(self, modules: Iterable[str]) -> None:
        """Import the user's workflow modules; their `@workflow`s register on import."""
        for mod in modules:
            try:
                importlib.import_module(mod)
            except Exception as e:  # SyntaxError too: whatever the module raises
                raise WorkflowImportError(mod, e) from e


REGISTRY = Registry()


def _semver_key(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split("."))


def _qualname(fn: Callable[..., Any]) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def workflow(
    *,
    name: str,
    version: str,
    resumes: Iterable[str] = (),
    queue: Queue | None = None,
    concurrency_key: Callable[[Any], str] | None = None,
) -> Callable[[Callable[..., Awaitable[Any]]], WorkflowDef]:
    """Register `async def f(ctx, input: Model) -> Model` as `name@version`. Its runs go in
    `queue` (its limits apply across every worker), keyed by `concurrency_key(input)`."""
    if concurrency_key is not None and queue is None:
        raise ConfigurationError(
            f"workflow {name!r}: concurrency_key is a key within a queue; give queue=Queue(...)"
        )
    if not _SEMVER.match(version):
        raise ConfigurationError(f"workflow {name!r}: version {version!r} is not X.Y.Z")
    if "@" in name or not name:
        raise ConfigurationError(f"workflow name {name!r} must be non-empty and contain no '@'")

    def decorate(fn: Callable[..., Awaitable[Any]]) -> WorkflowDef:
        if not inspect.iscoroutinefunction(fn):
            raise ConfigurationError(f"workflow {name!r}: {fn.__qualname__} must be `async def`")
        params = list(inspect.signature(fn).parameters)
        if len(params) != 2:
            raise ConfigurationError(
                f"workflow {name!r}: {fn.__qualname__} must take (ctx, input), got {params}"
            )
        hints = get_type_hints(fn)
        input_type = hints.get(params[1], Any)
        output_type = hints.get("return", Any)
        wf = WorkflowDef(
            name=name,
            version=version,
            fn=fn,
            input_type=input_type,
            output_type=output_type,
            resumes=tuple(resumes),
            queue=queue,
            concurrency_key=concurrency_key,
            input_adapter=TypeAdapter(input_type),
            output_adapter=TypeAdapter(output_type),
        )
        REGISTRY.add(wf)
        return wf

    return decorate
