"""Spans as JSON lines in `<data dir>/traces.jsonl`: the portable dump, one span a line.

Appends are buffered and flushed when a run parks or finishes (and when the buffer fills), so
tracing adds no write syscall to the per-step hot path. Several processes may append to one
file: each flush is one `write` of whole lines on an O_APPEND descriptor.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from tether.foundation.trace.contract import Span


class JsonlTraceSink:
    def __init__(self, path: Path, buffer_spans: int = 256) -> None:
        self.path = path
        self._buffer: list[str] = []
        self._limit = buffer_spans
        self._lock = threading.Lock()
        self._fd: int | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> JsonlTraceSink:
        return cls(Path(settings.data_path) / "traces.jsonl")

    def emit(self, span: Span) -> None:
        line = span.model_dump_json() + "\n"
        with self._lock:
            self._buffer.append(line)
            full = len(self._buffer) >= self._limit
        if full:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            if not self._buffer:
                return
            data, self._buffer = "".join(self._buffer).encode(), []
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.write(self._fd, data)

    def close(self) -> None:
        self.flush()
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def read(self) -> list[Span]:
        self.flush()
        if not self.path.exists():
            return []
        return [
            Span.model_validate_json(line) for line in self.path.read_text().splitlines() if line
        ]
