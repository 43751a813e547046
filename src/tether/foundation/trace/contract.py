"""I4 TraceSink: where spans go.

Spans are OpenTelemetry-shaped (trace and span ids as hex, nanosecond times, `gen_ai.*`
attribute names where they apply) so a backend can hand them to an OTel exporter unchanged.
Ids derive from the run id, so spans written by different workers for one run join one trace.
The runtime emits a span only after its journal entry commits, never for replayed entries.
"""

from __future__ import annotations

import hashlib
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field


class Span(BaseModel):
    trace_id: str
    span_id: str
    parent_span_id: str | None = None
    name: str
    kind: str = "internal"
    start_ns: int
    end_ns: int
    status: str = "ok"  # ok | error
    attributes: dict[str, Any] = Field(default_factory=dict)


def trace_id_for(run_id: str) -> str:
    return hashlib.sha256(f"trace:{run_id}".encode()).hexdigest()[:32]


def span_id_for(*parts: str) -> str:
    return hashlib.sha256(":".join(parts).encode()).hexdigest()[:16]


@runtime_checkable
class TraceSink(Protocol):
    def emit(self, span: Span) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...
