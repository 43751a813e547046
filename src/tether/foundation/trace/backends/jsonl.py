"""Spans as JSON lines in `<data dir>/traces.jsonl`: the portable dump, one span a line.

Appends are buffered and flushed when a run parks or finishes, when the buffer fills, and when
its oldest line is a second old (checked at each append), so tracing adds no write syscall to
the per-step hot path and a running run's spans still show up within a step or a second.
Several processes may append to one file: each flush is one `write` of whole lines on an
O_APPEND descriptor.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from tether.foundation.trace.contract import Span, span_from_json, span_json


class JsonlTraceSink:
    def __init__(self, path: Path, buffer_spans: int = 256, buffer_seconds: float = 1.0) -> None:
        self.path = path
        self._buffer: list[bytes] = []
        self._limit = buffer_spans
        self._delay = buffer_seconds
        self._since = 0.0  # monotonic time of the oldest buffered line
        self._lock = threading.Lock()
        self._fd: int | None = None

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> JsonlTraceSink:
        return cls(Path(settings.data_path) / "traces.jsonl", **options)

    def emit(self, span: Span) -> None:
        line = span_json(span)
        now = time.monotonic()
        with self._lock:
            if not self._buffer:
                self._since = now
            self._buffer.append(line)
            due = len(self._buffer) >= self._limit or now - self._since >= self._delay
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            if not self._buffer:
                return
            self._buffer.append(b"")  # the last line's newline
            data, self._buffer = b"\n".join(self._buffer), []
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
        return [span_from_json(line) for line in self.path.read_bytes().splitlines() if line]
