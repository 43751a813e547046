"""A tool call in a child process: start it, send a request, read the answer, map its death.

Shared by every lane that runs tools as local processes (plain, or under bubblewrap): a lane
decides the command prefix, the working directory and how long a process lives; this module
speaks child.py's protocol and turns a timeout, a limit or an exit into a `ToolFailure`.
Each process leads its own process group, so a kill also reaches whatever the tool started.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tether.foundation.secrets.redaction import REDACTOR
from tether.foundation.tools import child
from tether.foundation.tools.contract import LaneResult, ToolFailure, ToolInvocation

# (argv, writable directory, network allowed) -> argv: how a lane wraps the child command.
Wrap = Callable[[Sequence[str], Path, bool], list[str]]

STOP_GRACE = 2.0
# An answer is one line holding the whole result, far over asyncio's default 64 KiB line limit
# for a large one (the blob store takes results over 256 KiB, after a lane has carried them).
ANSWER_LIMIT = 1 << 30


def child_argv(mode: str) -> list[str]:
    """`-P`: the child's own directory must not shadow the tool's imports."""
    return [sys.executable, "-P", str(Path(child.__file__)), mode]


def child_env(workdir: Path) -> dict[str, str]:
    """A small environment: the worker's import path, no inherited secrets."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        "HOME": str(workdir),
        "TMPDIR": str(workdir),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    for name in ("LANG", "LC_ALL", "TZ"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def passed_env(invocation: ToolInvocation) -> dict[str, str]:
    """The variables the tool declared (`@tool(env=[...])`) from the worker's environment, now;
    their values become secrets to the redactor before they go anywhere."""
    env = {name: os.environ[name] for name in invocation.tool.env if name in os.environ}
    for value in env.values():
        REDACTOR.register(value)
    return env


def request(invocation: ToolInvocation) -> bytes:
    """One call for child.py; the environment a tool declared travels with each call, since a
    forked or session process was started before it was known."""
    tool = invocation.tool
    return (json.dumps({
        "ref": tool.ref, "args": invocation.args, "key": invocation.idempotency_key,
        "limits": tool.limits.model_dump(), "env": passed_env(invocation),
    }) + "\n").encode()  # fmt: skip


def answer_result(answer: dict[str, Any]) -> LaneResult:
    """child.py's answer line as a LaneResult."""
    if answer["ok"]:
        return LaneResult(value=answer["value"])
    limit = answer.get("limit")
    return LaneResult(failure=ToolFailure(
        type=answer["type"], message=answer["message"], limit=limit, interrupted=limit is not None,
    ))  # fmt: skip


def exit_failure(code: int, cpu_seconds: int) -> ToolFailure:
    """Why a child ended without answering; bwrap and shells report a signal as 128 + signum."""
    signum = -code if code < 0 else code - 128 if code > 128 else None
    if signum == signal.SIGXCPU:
        return ToolFailure(
            type="CpuLimit", interrupted=True, limit="cpu",
            message=f"used its CPU limit of {cpu_seconds} s and was killed",
        )  # fmt: skip
    how = f"was killed by signal {signum}" if signum else f"exited with status {code}"
    return ToolFailure(
        type="ToolProcessDied", interrupted=True,
        message=f"the tool's process {how} before answering",
    )  # fmt: skip


def lease_failure() -> ToolFailure:
    return ToolFailure(
        type="LeaseLost", interrupted=True,
        message="was stopped because its run's lease ran out or was lost: another worker may "
        "resume the run",
    )  # fmt: skip


def timeout_failure(timeout: float) -> ToolFailure:
    return ToolFailure(
        type="Timeout", interrupted=True, limit="timeout",
        message=f"ran past its wall timeout of {timeout:g} s and was killed",
    )  # fmt: skip


class ChildProcess:
    """One running child.py; `call` may be used again while `alive` (a session). `renew`
    bounds it by its run's lease: the child kills itself once a deadline passes unrenewed."""

    def __init__(self, proc: asyncio.subprocess.Process, renewals: int) -> None:
        self._proc, self._renewals = proc, renewals
        self._renewing = threading.Lock()  # the fd is closed once, never written after
        self._until: float | None = None
        self._lost = False

    @classmethod
    async def start(cls, argv: Sequence[str], workdir: Path) -> ChildProcess:
        theirs, renewals = os.pipe()
        os.set_blocking(renewals, False)  # a renewal must never block the heartbeat thread
        env = {**child_env(workdir), child.LEASE_FD: str(theirs)}
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, cwd=workdir, env=env, start_new_session=True, pass_fds=(theirs,),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                limit=ANSWER_LIMIT,
            )  # fmt: skip
        except BaseException:
            os.close(renewals)
            raise
        finally:
            os.close(theirs)
        return cls(proc, renewals)

    def renew(self, until: float) -> None:
        """It may run until `until` (time.monotonic()); from any thread."""
        self._until = until
        with self._renewing, contextlib.suppress(OSError):  # not reading: its deadline stands
            if self._renewals >= 0:
                os.write(self._renewals, f"{until}\n".encode())

    @property
    def alive(self) -> bool:
        return self._proc.returncode is None

    async def call(self, invocation: ToolInvocation) -> LaneResult:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        tool = invocation.tool
        try:
            self._proc.stdin.write(request(invocation))
            await self._proc.stdin.drain()
            line = await asyncio.wait_for(self._proc.stdout.readline(), tool.timeout)
        except TimeoutError:
            await self.kill()
            return LaneResult(failure=timeout_failure(tool.timeout))
        except (BrokenPipeError, ConnectionResetError):
            line = b""
        if not line:
            return LaneResult(failure=await self._death(invocation))
        return answer_result(json.loads(line))

    async def _death(self, invocation: ToolInvocation) -> ToolFailure:
        code = await self._proc.wait()
        expired = self._until is not None and time.monotonic() >= self._until
        if code in (-signal.SIGKILL, 128 + signal.SIGKILL) and (self._lost or expired):
            return lease_failure()
        return exit_failure(code, invocation.tool.limits.cpu_seconds)

    async def stop(self) -> None:
        """Close stdin (a session child then exits); kill it if it does not."""
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            await asyncio.wait_for(self._proc.wait(), STOP_GRACE)
        except TimeoutError:
            await self.kill()
        self.close()

    def lease_lost(self) -> None:
        """Kill it and all it started, from any thread; whoever awaits `call` sees it die."""
        self._lost = True
        self.kill_now()

    def kill_now(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, signal.SIGKILL)

    async def kill(self) -> None:
        self.kill_now()
        await self._proc.wait()
        self.close()

    def close(self) -> None:
        with self._renewing:
            if self._renewals >= 0:
                os.close(self._renewals)
                self._renewals = -1
