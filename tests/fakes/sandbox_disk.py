"""What the sandbox servers in tests/fakes do inside a "sandbox": each is a private directory
standing for its disk, and a command runs locally with `/tmp/` pointed into it and `python3`
at this interpreter, so the tool under test really executes and its side effects can be
counted, and a session's state survives exactly when it is on that disk."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run(root: Path, cmd: str, timeout: float | None) -> subprocess.CompletedProcess[str]:
    (root / "tmp").mkdir(parents=True, exist_ok=True)
    local = cmd.replace("/tmp/", f"{root}/tmp/").replace("python3", sys.executable)
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    return subprocess.run(
        local, shell=True, cwd=root, env=env, capture_output=True, text=True, timeout=timeout
    )


def write(root: Path, path: str, data: bytes | str) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data.encode() if isinstance(data, str) else data)
