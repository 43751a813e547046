"""The in-process trace sinks: one that keeps spans (tests, the CLI's live view) and one that
drops them (benchmarks of the runtime alone)."""

from __future__ import annotations

import threading
from typing import Any

from tether.foundation.trace.contract import Span


class MemoryTraceSink:
    def __init__(self) -> None:
        self.spans: list[Span] = []
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> MemoryTraceSink:
        return cls(**options)

    def emit(self, span: Span) -> None:
        with self._lock:
            self.spans.append(span)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def named(self, prefix: str) -> list[Span]:
        return [s for s in self.spans if s.name.startswith(prefix)]


class NullTraceSink:
    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> NullTraceSink:
        return cls(**options)

    def emit(self, span: Span) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass
