"""The `local` lanes: every tool call runs in a child process on this machine.

- ephemeral: a fresh process per call, in a throwaway working directory removed afterwards;
- persistent_session: a directory per run and one long-lived process per run, so a tool can
  keep state in memory between calls; `park` stops the process (a parked run holds none) and
  the next call starts it again in the same directory; `end_run` removes both;
- persistent_workspace: a fresh process per call in `<data dir>/tools/workspaces/<name>`,
  kept across runs.

Limits (CPU, memory, open files) are set by the child itself and the wall timeout by
process.py, so they hold on every lane. No call outlives its run's lease (`LeaseBound`): a
heartbeat that finds the lease lost kills the run's processes, and should the worker be
frozen, a one-shot call is killed by its template and a session's process kills itself once
the lease runs out unrenewed. The local
lane is not a security boundary: a tool sees the machine as the worker does. On Linux a
one-shot call (ephemeral, workspace) is a fork of a warm template (forkserver.py), not a
fresh interpreter. A `Sandbox` is how bubblewrap (backends/bubblewrap.py) reuses these lanes
inside namespaces: it wraps a session's command, and builds the sandbox a one-shot call's
forked child enters. An ephemeral call leaves the choice of its throwaway directory to the
one-shot path, so a sandbox can be built around one ahead of the call.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from tether.foundation.tools.contract import Lane, LaneResult, PersistenceClass, ToolInvocation
from tether.foundation.tools.forkserver import ForkServer
from tether.foundation.tools.process import ChildProcess, Wrap, child_argv

# (invocation, working directory) -> result: how a lane runs one call in a process of its own.
OneShot = Callable[[ToolInvocation, Path], Awaitable[LaneResult]]
# invocation -> result: the same, in a throwaway directory it chooses and removes.
Throwaway = Callable[[ToolInvocation], Awaitable[LaneResult]]


class Sandbox(Protocol):
    def __call__(self, argv: Sequence[str], workdir: Path, network: bool) -> list[str]:
        """A session's command, wrapped to start inside a sandbox."""
        ...

    async def run(self, invocation: ToolInvocation, workdir: Path, forks: ForkServer) -> LaneResult:
        """One call, in a sandbox of its own that a forked child of `forks` enters."""
        ...

    async def run_throwaway(self, invocation: ToolInvocation, forks: ForkServer) -> LaneResult:
        """As `run`, in a throwaway directory of the sandbox's choosing."""
        ...

    def close(self) -> None:
        """Tear down what was built ahead of calls and never used."""
        ...


_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def unwrapped(argv: Sequence[str], workdir: Path, network: bool) -> list[str]:
    """The child as it is, told the worker's pid so it dies with the worker (bwrap's
    `--die-with-parent` does that for the wrapped lanes)."""
    return [*argv, str(os.getpid())]


def dir_name(run_id: str) -> str:
    return run_id if _SAFE.match(run_id) else hashlib.sha256(run_id.encode()).hexdigest()[:32]


async def _wrapped_one_shot(wrap: Wrap, invocation: ToolInvocation, workdir: Path) -> LaneResult:
    argv = wrap(child_argv("once"), workdir, invocation.tool.network)
    proc = await ChildProcess.start(argv, workdir)
    try:
        return await proc.call(invocation)
    finally:
        await proc.stop()


async def in_throwaway_dir(one_shot: OneShot, invocation: ToolInvocation) -> LaneResult:
    workdir = Path(tempfile.mkdtemp(prefix="tether-tool-"))
    try:
        return await one_shot(invocation, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


class EphemeralLane:
    def __init__(self, throwaway: Throwaway) -> None:
        self._throwaway = throwaway

    async def run(self, invocation: ToolInvocation) -> LaneResult:
        return await self._throwaway(invocation)


class WorkspaceLane:
    def __init__(self, root: Path, one_shot: OneShot) -> None:
        self._root, self._one_shot = root, one_shot

    async def run(self, invocation: ToolInvocation) -> LaneResult:
        assert invocation.tool.workspace is not None  # @tool requires it for this class
        workdir = self._root / invocation.tool.workspace
        workdir.mkdir(parents=True, exist_ok=True)
        return await self._one_shot(invocation, workdir)


class SessionLane:
    """One process per (run, network allowed): a sandbox's network is fixed at its start."""

    def __init__(self, root: Path, wrap: Wrap) -> None:
        self._root, self._wrap = root, wrap
        self._procs: dict[tuple[str, bool], ChildProcess] = {}
        self._locks: dict[tuple[str, bool], asyncio.Lock] = {}
        self._leases: dict[str, float] = {}  # run id -> when its processes must stop

    def directory(self, run_id: str) -> Path:
        return self._root / dir_name(run_id)

    async def run(self, invocation: ToolInvocation) -> LaneResult:
        key = (invocation.run_id, invocation.tool.network)
        async with self._locks.setdefault(key, asyncio.Lock()):
            proc = self._procs.get(key)
            if proc is None or not proc.alive:
                if proc is not None:  # it died between calls (its lease ran out, say)
                    await proc.stop()
                workdir = self.directory(invocation.run_id)
                workdir.mkdir(parents=True, exist_ok=True)
                argv = self._wrap(child_argv("session"), workdir, invocation.tool.network)
                proc = self._procs[key] = await ChildProcess.start(argv, workdir)
                until = self._leases.get(invocation.run_id)
                if until is not None:
                    proc.renew(until)
            result = await proc.call(invocation)
            if not proc.alive or (result.failure and result.failure.interrupted):
                await proc.stop()
                del self._procs[key]
            return result

    async def park(self, run_id: str) -> None:
        self._leases.pop(run_id, None)
        for key in [k for k in self._procs if k[0] == run_id]:
            async with self._locks[key]:
                proc = self._procs.pop(key, None)
                if proc is not None:
                    await proc.stop()

    def renew(self, run_id: str, until: float) -> None:
        """The run's processes kill themselves at `until` unless renewed (any thread)."""
        self._leases[run_id] = until
        for key, proc in list(self._procs.items()):
            if key[0] == run_id:
                proc.renew(until)

    def lease_lost(self, run_id: str) -> None:
        """Kill the run's session processes now (any thread); their state is on disk."""
        self._leases.pop(run_id, None)
        for key, proc in list(self._procs.items()):
            if key[0] == run_id:
                proc.lease_lost()

    async def end_run(self, run_id: str) -> None:
        await self.park(run_id)
        for key in [k for k in self._locks if k[0] == run_id]:
            del self._locks[key]
        shutil.rmtree(self.directory(run_id), ignore_errors=True)

    async def close(self) -> None:
        for run_id in {k[0] for k in self._procs}:
            await self.park(run_id)


class LocalLanes:
    """The default lane backend (`tools = "local"`); a `sandbox` isolates every child."""

    def __init__(self, data_dir: Path, sandbox: Sandbox | None = None) -> None:
        root = data_dir / "tools"
        self._forks: ForkServer | None = None
        self._sandbox = sandbox
        one_shot: OneShot
        throwaway: Throwaway
        if sys.platform.startswith("linux"):  # the template is Linux's (PR_SET_PDEATHSIG)
            forks = self._forks = ForkServer(root / "template")
            if sandbox is None:
                one_shot, throwaway = forks.call, partial(in_throwaway_dir, forks.call)
            else:
                one_shot = partial(sandbox.run, forks=forks)
                throwaway = partial(sandbox.run_throwaway, forks=forks)
        else:
            one_shot = partial(_wrapped_one_shot, sandbox or unwrapped)
            throwaway = partial(in_throwaway_dir, one_shot)
        self._session = SessionLane(root / "sessions", sandbox or unwrapped)
        self._lanes: dict[PersistenceClass, Lane] = {
            PersistenceClass.EPHEMERAL: EphemeralLane(throwaway),
            PersistenceClass.PERSISTENT_SESSION: self._session,
            PersistenceClass.PERSISTENT_WORKSPACE: WorkspaceLane(root / "workspaces", one_shot),
        }

    @classmethod
    def from_settings(cls, settings: Any) -> LocalLanes:
        return cls(settings.ensure_data_dir())

    def lane(self, persistence: PersistenceClass) -> Lane:
        return self._lanes[persistence]

    async def park(self, run_id: str) -> None:
        if self._forks is not None:
            self._forks.forget(run_id)
        await self._session.park(run_id)

    async def end_run(self, run_id: str) -> None:
        if self._forks is not None:
            self._forks.forget(run_id)
        await self._session.end_run(run_id)  # a workspace outlives runs by design

    def renew(self, run_id: str, until: float) -> None:
        if self._forks is not None:
            self._forks.renew(run_id, until)
        self._session.renew(run_id, until)

    def lease_lost(self, run_id: str) -> None:
        if self._forks is not None:
            self._forks.lease_lost(run_id)
        self._session.lease_lost(run_id)

    async def close(self) -> None:
        await self._session.close()
        if self._sandbox is not None:
            self._sandbox.close()
        if self._forks is not None:
            self._forks.close()
