"""A real Arize Phoenix for the tests: `phoenix serve` from `.venv-phoenix` (which
scripts/services.sh creates; Phoenix's pins conflict with tether's, so never tether's venv),
with a temporary working directory and free ports, and its REST API to read spans back."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.phoenix_server import PHOENIX, PhoenixServer

__all__ = ["PHOENIX", "Phoenix"]


class Phoenix(PhoenixServer):
    """The bench's Phoenix launcher in a directory of its own, plus reading spans back."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="phoenix-")
        super().__init__(Path(self._dir.name))

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
        self.stop()
        self._dir.cleanup()
