"""A real Arize Phoenix for the tests: `phoenix serve` from `.venv-phoenix` (which
scripts/services.sh creates; Phoenix's pins conflict with tether's, so never tether's venv),
with a temporary working directory and free ports, and its REST API to read spans back."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
PHOENIX = ROOT / ".venv-phoenix" / "bin" / "phoenix"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Phoenix:
    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="phoenix-")
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "PHOENIX_WORKING_DIR": self._dir.name,
            "PHOENIX_HOST": "127.0.0.1",
            "PHOENIX_PORT": str(port),
            "PHOENIX_GRPC_PORT": str(_free_port()),
        }
        self._log = open(Path(self._dir.name) / "serve.log", "wb")  # noqa: SIM115
        self._process = subprocess.Popen(
            [str(PHOENIX), "serve"], env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 180
        while not self._healthy():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"phoenix serve did not come up; see {self._log.name}")
            time.sleep(0.5)

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def spans(self, project: str, trace_id: str | None = None) -> list[dict[str, Any]]:
        """Every span Phoenix holds in `project` (of one trace, if given), through its REST API."""
        found: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
            r = httpx.get(f"{self.url}/v1/projects/{project}/spans", params=params, timeout=10)
            if r.status_code == 404:
                return []
            r.raise_for_status()
            body = r.json()
            found += body["data"]
            cursor = body.get("next_cursor")
            if not cursor:
                break
        return [s for s in found if trace_id is None or s["context"]["trace_id"] == trace_id]

    def wait_for_spans(self, project: str, trace_id: str, count: int) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 30
        while len(spans := self.spans(project, trace_id)) < count:
            assert time.monotonic() < deadline, f"Phoenix has {len(spans)} of {count} spans"
            time.sleep(0.25)
        return spans

    def close(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(5)
        self._log.close()
        self._dir.cleanup()
