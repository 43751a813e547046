"""What the sandbox servers in tests/fakes do inside a "sandbox": each is a private directory
standing for its disk, and a command runs locally with `/tmp/` pointed into it and `python3`
at this interpreter, so the tool under test really executes and its side effects can be
counted, and a session's state survives exactly when it is on that disk."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path


def run(root: Path, cmd: str, timeout: float | None) -> subprocess.CompletedProcess[str]:
    """Past its timeout the command is killed with all it started (the tool's process under
    the shell), as the sandbox would be: nothing is left running on the host."""
    (root / "tmp").mkdir(parents=True, exist_ok=True)
    local = cmd.replace("/tmp/", f"{root}/tmp/").replace("python3", sys.executable)
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    with subprocess.Popen(
        local, shell=True, cwd=root, env=env, text=True, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    ) as shell:  # fmt: skip
        try:
            stdout, stderr = shell.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(shell.pid, signal.SIGKILL)
            shell.communicate()
            raise
    return subprocess.CompletedProcess(local, shell.returncode, stdout, stderr)


def write(root: Path, path: str, data: bytes | str) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data.encode() if isinstance(data, str) else data)
