"""A stand-in for the E2B SDK's client, at the boundary our backend calls.

It really runs what it is asked to (tests/fakes/sandbox_disk.py), so the tool under test
executes and its side effects can be counted.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fakes.sandbox_disk import run, write

# --- E2B: AsyncSandbox.create(...) -> sandbox with .files.write, .commands.run, .kill --------


@dataclass
class _E2BFiles:
    root: Path

    async def write(self, path: str, data: bytes | str) -> None:
        write(self.root, path, data)


@dataclass
class _CommandResult:
    stdout: str
    stderr: str
    exit_code: int


@dataclass
class _E2BCommands:
    root: Path

    async def run(self, cmd: str, timeout: float | None = 60) -> Any:
        from e2b import CommandExitException, TimeoutException

        try:
            done = run(self.root, cmd, timeout)
        except subprocess.TimeoutExpired as e:
            raise TimeoutException("command timed out") from e
        if done.returncode != 0:
            raise CommandExitException(done.stderr, done.stdout, done.returncode, None)
        return _CommandResult(done.stdout, done.stderr, done.returncode)


class FakeE2B:
    """`create` replaces `AsyncSandbox.create`; `created` and `killed` record the calls."""

    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []
        self.killed = 0

    async def create(self, **kwargs: Any) -> Any:
        self.created.append(kwargs)
        root = Path(tempfile.mkdtemp(prefix="fake-e2b-"))
        fake = self

        class Sandbox:
            files = _E2BFiles(root)
            commands = _E2BCommands(root)

            async def kill(self) -> None:
                fake.killed += 1

        return Sandbox()
