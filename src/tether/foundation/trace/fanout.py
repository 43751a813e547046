"""Several trace sinks at once (`trace = "jsonl,phoenix"`): every span goes to each of them.

A sink that raises is logged and skipped for that span, so a broken exporter can neither fail a
run nor starve the other sinks; closing goes on through every sink whatever one raises.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from tether.foundation.trace.contract import Span, TraceSink

log = logging.getLogger("tether.trace")


class FanoutTraceSink:
    def __init__(self, sinks: Sequence[TraceSink]) -> None:
        self.sinks = list(sinks)

    def emit(self, span: Span) -> None:
        for sink in self.sinks:
            try:
                sink.emit(span)
            except Exception:
                log.exception("trace sink %s failed to take a span", type(sink).__name__)

    def flush(self) -> None:
        for sink in self.sinks:
            try:
                sink.flush()
            except Exception:
                log.exception("trace sink %s failed to flush", type(sink).__name__)

    def close(self) -> None:
        for sink in self.sinks:
            try:
                sink.close()
            except Exception:
                log.exception("trace sink %s failed to close", type(sink).__name__)
