"""Replaying a JSONL trace dump into a sink: a trace written offline shows up in a trace UI
later, with its original ids and times (they are in the dump; nothing is re-derived).

A dump is a file, a folder of `*.jsonl` files (read in name order), or an `s3://bucket/prefix`
the `s3` backend wrote. A line that is not a span is skipped and reported with its file and
line number; the rest still load.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pydantic import ValidationError

from tether.errors import InvalidInput
from tether.foundation.trace.contract import Span, TraceSink, span_from_json

_TRACE_ID = re.compile(r"[0-9a-f]{32}")
_SPAN_ID = re.compile(r"[0-9a-f]{16}")
_KINDS = {"internal", "server", "client", "producer", "consumer"}
# a sink that drops past a bound (the OTLP family) is waited on this often, so a replay never
# outruns it; and for at most this long each time
CHUNK = 512
DRAIN_SECONDS = 60.0


@runtime_checkable
class Drainable(Protocol):
    def drain(self, timeout: float) -> bool: ...


@dataclass
class LoadReport:
    loaded: int = 0
    skipped: list[str] = field(default_factory=list)  # "file:line: why", one a skipped line
    delivered: bool = True  # False if the sink's collector did not take everything


def read_dump(source: str, settings: Any) -> Iterator[Span | str]:
    """Each line of the dump as a Span, or as "file:line: why" when it is not one."""
    for name, lines in _files(source, settings):
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                yield checked(span_from_json(line))
            except ValidationError as e:
                yield f"{name}:{number}: {_why(e)}"
            except ValueError as e:
                yield f"{name}:{number}: {e}"


def _files(source: str, settings: Any) -> Iterator[tuple[str, Iterable[bytes]]]:
    if source.startswith("s3://"):
        from tether.foundation.trace.backends import s3

        yield from s3.read_dump(source, settings.trace_s3_endpoint_url)
        return
    path = Path(source)
    if path.is_dir():
        files = sorted(path.rglob("*.jsonl"))
    elif path.is_file():
        files = [path]
    else:
        raise InvalidInput("trace dump", f"{path} is neither a file nor a folder")
    for file in files:
        with file.open("rb") as lines:
            yield str(file), lines


def _why(e: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'line'}: {err['msg']}" for err in e.errors()[:3]
    )


def checked(span: Span) -> Span:
    """A span an OTLP exporter can carry: ids at OTel's sizes in hex, a known kind."""
    if not _TRACE_ID.fullmatch(span.trace_id):
        raise ValueError(f"trace_id {span.trace_id!r} is not 32 hex digits")
    for name in ("span_id", "parent_span_id"):
        value = getattr(span, name)
        if value is not None and not _SPAN_ID.fullmatch(value):
            raise ValueError(f"{name} {value!r} is not 16 hex digits")
    if span.kind not in _KINDS:
        raise ValueError(f"kind {span.kind!r} is not one of {', '.join(sorted(_KINDS))}")
    if span.end_ns < span.start_ns:
        raise ValueError("the span ends before it starts")
    return span


def load_dump(source: str, sink: TraceSink, settings: Any) -> LoadReport:
    """Emit every span of the dump into `sink`, waiting on it when it would otherwise drop."""
    report = LoadReport()
    drain = sink.drain if isinstance(sink, Drainable) else None
    for item in read_dump(source, settings):
        if isinstance(item, str):
            report.skipped.append(item)
            continue
        sink.emit(item)
        report.loaded += 1
        if drain is not None and report.loaded % CHUNK == 0 and not drain(DRAIN_SECONDS):
            report.delivered = False
            return report
    sink.flush()
    if drain is not None:
        report.delivered = drain(DRAIN_SECONDS)
    return report
