"""I4 TraceSink: where spans go.

Spans are OpenTelemetry-shaped (trace and span ids as hex, nanosecond times, `gen_ai.*`
attribute names where they apply) so a backend can hand them to an OTel exporter unchanged.
Ids derive from the run id, so spans written by different workers for one run join one trace.
The runtime emits a span only after its journal entry commits, never for replayed entries.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

from pydantic import TypeAdapter

if TYPE_CHECKING:
    from tether.settings import Settings


@dataclass(slots=True)
class SpanEvent:
    """Something decided at one moment of a span: a guard's verdict on the call the span
    records (I9 policy allow/deny, an I10 budget or rate check), kept on the span it guarded."""

    name: str
    time_ns: int
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Span:
    """A plain dataclass, not a pydantic model: the runtime builds one for every step from
    values it made itself, and validating those cost more than building and writing the span."""

    trace_id: str
    span_id: str
    name: str
    start_ns: int
    end_ns: int
    parent_span_id: str | None = None
    kind: str = "internal"
    status: str = "ok"  # ok | error
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[SpanEvent] = field(default_factory=list)


_SPAN: TypeAdapter[Span] = TypeAdapter(Span)


def span_json(span: Span) -> bytes:
    return _SPAN.serializer.to_json(span)


def span_from_json(text: str | bytes) -> Span:
    """A span read back from a dump, checked field by field (a dump is outside input)."""
    return _SPAN.validate_json(text)


# Ids are BLAKE2b digests of the names, sized as OTel's (16 and 8 bytes): any process derives
# the same ones, and BLAKE2b is hashlib's quickest for short input (a step span takes one).
def trace_id_for(run_id: str) -> str:
    return hashlib.blake2b(f"trace:{run_id}".encode(), digest_size=16).hexdigest()


def span_id_for(*parts: str) -> str:
    return hashlib.blake2b(":".join(parts).encode(), digest_size=8).hexdigest()


@runtime_checkable
class TraceSink(Protocol):
    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> Self:
        """How `tether.foundation.loader` builds it: from the settings (its database URL, the
        data directory) and the options of its table in tether.toml, where it has one."""
        ...

    def emit(self, span: Span) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...
