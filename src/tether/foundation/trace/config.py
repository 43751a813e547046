"""Picks I4's sinks from settings: `Settings.trace` names one backend of the `tether.trace`
entry-point group, or several separated by commas, which then all receive every span."""

from __future__ import annotations

from typing import Any, cast

from tether.errors import ConfigurationError
from tether.foundation.loader import open_backend
from tether.foundation.trace.contract import TraceSink
from tether.foundation.trace.fanout import FanoutTraceSink


def open_trace_sink(settings: Any) -> TraceSink:
    names = [n.strip() for n in str(settings.trace).split(",") if n.strip()]
    if not names:
        raise ConfigurationError("trace: name a backend (jsonl, otlp, phoenix, ...) or 'none'")
    if len(set(names)) != len(names):
        raise ConfigurationError(f"trace: {settings.trace!r} names a backend twice")
    sinks: list[TraceSink] = []
    try:
        for name in names:
            sinks.append(open_backend("trace", name, TraceSink, settings))
    except BaseException:
        for sink in sinks:
            sink.close()
        raise
    return sinks[0] if len(sinks) == 1 else cast(TraceSink, FanoutTraceSink(sinks))
