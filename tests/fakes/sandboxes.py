"""Stand-ins for the E2B and Daytona SDK clients, at the boundary our backends call.

They really run what they are asked to: uploaded files land under a private root directory
per sandbox, and a command runs locally with `/tmp/` pointed at that root and `python3` at this
interpreter, so the tool under test executes and its side effects can be counted.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _run(root: Path, cmd: str, timeout: float | None) -> subprocess.CompletedProcess[str]:
    (root / "tmp").mkdir(parents=True, exist_ok=True)
    local = cmd.replace("/tmp/", f"{root}/tmp/").replace("python3", sys.executable)
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    return subprocess.run(
        local, shell=True, cwd=root, env=env, capture_output=True, text=True, timeout=timeout
    )


def _write(root: Path, path: str, data: bytes | str) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data.encode() if isinstance(data, str) else data)


# --- E2B: AsyncSandbox.create(...) -> sandbox with .files.write, .commands.run, .kill --------


@dataclass
class _E2BFiles:
    root: Path

    async def write(self, path: str, data: bytes | str) -> None:
        _write(self.root, path, data)


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
            done = _run(self.root, cmd, timeout)
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


# --- Daytona: AsyncDaytona with get/create; sandbox with fs, process, start/stop/delete -----


@dataclass
class _DaytonaFs:
    root: Path

    async def upload_file(self, src: bytes, dst: str) -> None:
        _write(self.root, dst, src)


@dataclass
class _ExecuteResponse:
    exit_code: int
    result: str


@dataclass
class _DaytonaProcess:
    root: Path

    async def exec(self, command: str, timeout: int | None = None) -> _ExecuteResponse:
        from daytona import DaytonaTimeoutError

        try:
            done = _run(self.root, command, timeout)
        except subprocess.TimeoutExpired as e:
            raise DaytonaTimeoutError("execution timed out") from e
        return _ExecuteResponse(done.returncode, done.stdout)


@dataclass
class FakeDaytonaSandbox:
    name: str
    labels: dict[str, str]
    network_block_all: bool
    root: Path
    state: str = "started"
    events: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.fs, self.process = _DaytonaFs(self.root), _DaytonaProcess(self.root)

    async def start(self) -> None:
        self.state = "started"
        self.events.append("start")

    async def stop(self) -> None:
        self.state = "stopped"
        self.events.append("stop")

    async def delete(self) -> None:
        self.state = "deleted"
        self.events.append("delete")


class FakeDaytona:
    def __init__(self) -> None:
        self.sandboxes: dict[str, FakeDaytonaSandbox] = {}

    async def get(self, name: str) -> FakeDaytonaSandbox:
        from daytona import DaytonaNotFoundError

        box = self.sandboxes.get(name)
        if box is None or box.state == "deleted":
            raise DaytonaNotFoundError(f"sandbox {name} not found")
        return box

    async def create(self, params: Any) -> FakeDaytonaSandbox:
        box = FakeDaytonaSandbox(
            name=params.name, labels=params.labels, network_block_all=params.network_block_all,
            root=Path(tempfile.mkdtemp(prefix="fake-daytona-")),
        )  # fmt: skip
        self.sandboxes[params.name] = box
        return box
