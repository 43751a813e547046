"""A live Arize Phoenix for the `tether-sqlite-phoenix` row, started once per harness run as
the trace tests start theirs: `phoenix serve` from `.venv-phoenix` (scripts/services.sh makes
it; Phoenix's pins conflict with tether's), a temporary working directory and free ports.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import httpx

PHOENIX = Path(__file__).resolve().parents[1] / ".venv-phoenix" / "bin" / "phoenix"


def missing() -> str | None:
    if PHOENIX.exists():
        return None
    return f"Phoenix is not installed at {PHOENIX} (scripts/services.sh creates it)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PhoenixServer:
    def __init__(self, workdir: Path) -> None:
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        home = workdir / "phoenix"
        home.mkdir()
        env = {
            **os.environ,
            "PHOENIX_WORKING_DIR": str(home),
            "PHOENIX_HOST": "127.0.0.1",
            "PHOENIX_PORT": str(port),
            "PHOENIX_GRPC_PORT": str(_free_port()),
        }
        self.log = open(home / "serve.log", "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [str(PHOENIX), "serve"], env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 180
        while not self._healthy():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"phoenix serve did not come up; see {self.log.name}")
            time.sleep(0.5)

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()
