"""The `bubblewrap` lanes: the local lanes, each child inside `bwrap --unshare-all`.

Inside, the whole system is mounted read-only, /tmp is a private tmpfs, and the only
writable directory from the host is the call's own (the throwaway dir, the run's session
dir, or the named workspace). Every namespace is unshared, the network included, unless the
tool declared `network=True`. The backend runs bwrap once when constructed, so a machine
where it cannot start fails at configuration time with bwrap's own complaint, not at a call.

A session's process is started by bwrap, as the command it sandboxes. A one-shot call pays no
interpreter start: bwrap builds the call's sandbox around a placeholder (`cat`, which echoes
a line once the sandbox is ready), a child forked from the worker's warm template enters it
(tools/namespaces.py) and runs the tool, and the sandbox is killed after the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tether.errors import ConfigurationError
from tether.foundation.tools.contract import LaneResult, ToolInvocation
from tether.foundation.tools.forkserver import ForkServer
from tether.foundation.tools.local import LocalLanes
from tether.foundation.tools.process import exit_failure, timeout_failure

_SYSTEM = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]


def _code_under_tmp() -> list[str]:
    """Read-only binds that bring back, over the private /tmp, the interpreter and the import
    path when they live under /tmp (a CI checkout, a virtualenv made there): the tool must
    import what the worker imports."""
    roots = {sys.prefix, sys.base_prefix, *(p for p in sys.path if p)}
    resolved = {str(Path(r).resolve()) for r in roots if Path(r).exists()}
    under = sorted(p for p in resolved if p.startswith("/tmp/"))
    return [arg for path in under for arg in ("--ro-bind", path, path)]


class Bubblewrap:
    """Wraps a child command in bwrap; checks at construction that bwrap works here."""

    def __init__(self, binary: str = "bwrap") -> None:
        path = shutil.which(binary)
        if path is None:
            raise ConfigurationError(
                f"tools = 'bubblewrap' needs the {binary!r} program, which is not on PATH: "
                "install Debian's `bubblewrap` package, or set tools = 'local'"
            )
        self.binary = path
        self._code = _code_under_tmp()
        probe = [path, "--unshare-all", "--die-with-parent", *_SYSTEM, "--", "true"]
        try:
            done = subprocess.run(probe, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise ConfigurationError(f"bubblewrap ({path}) cannot start: {e}") from e
        if done.returncode != 0:
            raise ConfigurationError(
                f"bubblewrap ({path}) cannot create namespaces here: {done.stderr.strip()} "
                "(unprivileged user namespaces may be disabled); set tools = 'local'"
            )

    def _options(self, workdir: Path, network: bool) -> list[str]:
        return [
            "--unshare-all", *(["--share-net"] if network else []),
            "--die-with-parent", *_SYSTEM, *self._code,
            "--bind", str(workdir), str(workdir), "--chdir", str(workdir),
        ]  # fmt: skip

    def __call__(self, argv: Sequence[str], workdir: Path, network: bool) -> list[str]:
        return [self.binary, *self._options(workdir, network), "--", *argv]

    async def run(self, invocation: ToolInvocation, workdir: Path, forks: ForkServer) -> LaneResult:
        tool = invocation.tool
        info, info_w = os.pipe()  # bwrap writes the placeholder's pid here
        try:
            proc = await asyncio.create_subprocess_exec(
                self.binary, *self._options(workdir, tool.network), "--info-fd", str(info_w),
                "--", "cat", pass_fds=(info_w,), start_new_session=True,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
        finally:
            os.close(info_w)
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(b"ready\n")
            try:
                ready = await asyncio.wait_for(proc.stdout.readline(), tool.timeout)
            except TimeoutError:
                return LaneResult(failure=timeout_failure(tool.timeout))
            if not ready:  # bwrap could not build the sandbox; it said why on stderr
                return LaneResult(failure=exit_failure(await proc.wait(), 0))
            holder = json.loads(os.read(info, 64 * 1024))["child-pid"]
            return await forks.call(invocation, workdir, enter=holder)
        finally:
            os.close(info)
            with contextlib.suppress(ProcessLookupError):  # the sandbox, and all left in it
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()


class BubblewrapLanes(LocalLanes):
    """`tools = "bubblewrap"`: the same three lanes as `local`, isolated."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir, sandbox=Bubblewrap())

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> BubblewrapLanes:
        return cls(settings.ensure_data_dir(), **options)
