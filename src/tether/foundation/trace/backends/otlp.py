"""I4 over OTLP: tether's spans sent to any OpenTelemetry collector by the SDK's OTLP exporter.

The SDK's tracer mints its own ids and clocks, so it is not used: each tether span becomes a
`ReadableSpan` with tether's derived trace and span ids (a run resumed on another worker goes
on in the same trace) and the journal's start and end times, and the exporter is fed directly
by a `SpanOutbox` (batching, a bounded buffer, retries; a run never waits on the collector).
Conversion happens on the outbox's thread, so `emit` costs the runtime one locked append.

Configured as the SDK is, by the standard variables (`OTEL_EXPORTER_OTLP_ENDPOINT`,
`..._TRACES_ENDPOINT`, `..._HEADERS`, `..._PROTOCOL`, `..._TIMEOUT`, `OTEL_SERVICE_NAME`,
`OTEL_BSP_SCHEDULE_DELAY`, `OTEL_BSP_MAX_QUEUE_SIZE`, `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`); tether's
`otlp_endpoint`, `otlp_protocol` and `otlp_headers` settings win where set. The protocol is
HTTP/protobuf unless `grpc` is asked for (that needs opentelemetry-exporter-otlp-proto-grpc).
Every string leaves through the I7 redactor.

The exporter's own log lines (a warning a retry, an error a failed batch: dozens a minute
while a collector is down) are kept out of the log; the last one becomes the reason in the
outbox's single warning with the count.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tether.errors import ConfigurationError
from tether.foundation.secrets.redaction import REDACTOR, redact
from tether.foundation.trace.backends import otlp_encoding
from tether.foundation.trace.contract import Span
from tether.foundation.trace.outbox import SpanOutbox

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter

Attributes = dict[str, Any]


class OtlpTraceSink:
    """A TraceSink that exports over OTLP; `phoenix` and `langfuse` add attributes and auth."""

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        target: str,
        resource: Mapping[str, str] | None = None,
        capacity: int = 2048,
        batch: int = 512,
        delay: float = 5.0,
        close_timeout: float = 10.0,
    ) -> None:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope

        self.exporter = exporter
        self._exporter_open = True
        self._resource: Resource = Resource.create(
            {"service.name": os.environ.get("OTEL_SERVICE_NAME", "tether"), **(resource or {})}
        )
        self._scope = InstrumentationScope("tether")
        self._post = _request_sender(exporter)
        self._encoder = otlp_encoding.RequestEncoder(self._resource.attributes, "tether")
        self._limit = int(_number("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", default=VALUE_LIMIT))
        self.outbox = SpanOutbox(
            self._send,
            target=target,
            capacity=capacity,
            batch=batch,
            delay=delay,
            close_timeout=close_timeout,
            interrupt=self._shut_exporter,
        )

    @classmethod
    def from_settings(cls, settings: Any) -> OtlpTraceSink:
        protocol = (
            settings.otlp_protocol
            or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or "http/protobuf"
        )
        base = settings.otlp_endpoint
        headers = dict(settings.otlp_headers) or None
        if protocol == "grpc":
            exporter = grpc_exporter(base, headers)
        elif protocol == "http/protobuf":
            exporter = http_exporter(f"{base.rstrip('/')}/v1/traces" if base else None, headers)
        else:
            raise ConfigurationError(
                f"OTLP protocol {protocol!r} is not supported; use 'http/protobuf' or 'grpc'"
            )
        return cls(exporter, target=exporter_target(exporter, base), **batching())

    # -- TraceSink ------------------------------------------------------------------------

    def emit(self, span: Span) -> None:
        self.outbox.put(span)

    def flush(self) -> None:
        self.outbox.flush()

    def drain(self, timeout: float) -> bool:
        return self.outbox.drain(timeout)

    def close(self) -> None:
        self.outbox.close()
        self._shut_exporter()

    def _shut_exporter(self) -> None:
        # once: the outbox may already have cut a send to a down collector short this way
        if self._exporter_open:
            self._exporter_open = False
            self.exporter.shutdown()

    # -- on the outbox's thread -----------------------------------------------------------

    def extra_attributes(self, span: Span) -> Attributes:
        """What a vendor's UI needs beyond tether's own attributes (none for plain OTLP)."""
        return {}

    def _send(self, spans: Sequence[Span]) -> str | None:
        from opentelemetry.sdk.trace.export import SpanExportResult

        _EXPORTER_LOG.last = ""
        if self._post is not None:
            sent = self._post(self._encoder.request(self._wire(s) for s in spans))
        else:
            result = self.exporter.export([self.readable(s) for s in spans])
            sent = result is SpanExportResult.SUCCESS
        if sent:
            return None
        return _EXPORTER_LOG.last or "the exporter gave no reason"

    def _wire(self, span: Span) -> bytes:
        """The span as OTLP protobuf: what `readable` makes, without the SDK's objects."""
        extra = self.extra_attributes(span)
        attributes = otel_attributes({**span.attributes, **extra}, self._limit)
        events = [
            (redact(e.name), e.time_ns, otel_attributes(e.attributes, self._limit))
            for e in span.events
        ]
        name = redact(span.name) if REDACTOR.active else span.name
        return otlp_encoding.span(span, name, attributes, events)

    def readable(self, span: Span) -> ReadableSpan:
        from opentelemetry.sdk.trace import Event, ReadableSpan
        from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

        trace_id = int(span.trace_id, 16)
        sampled = TraceFlags(TraceFlags.SAMPLED)

        def context(span_id: str) -> SpanContext:
            return SpanContext(trace_id, int(span_id, 16), is_remote=False, trace_flags=sampled)

        extra = self.extra_attributes(span)
        attributes = otel_attributes({**span.attributes, **extra}, self._limit)
        if span.status == "ok":
            status = Status(StatusCode.OK)
        else:
            reason = attributes.get("error.message") or attributes.get("error.type") or ""
            status = Status(StatusCode.ERROR, str(reason))
        return ReadableSpan(
            name=redact(span.name),
            context=context(span.span_id),
            parent=context(span.parent_span_id) if span.parent_span_id else None,
            resource=self._resource,
            attributes=attributes,
            kind=SpanKind[span.kind.upper()],
            status=status,
            start_time=span.start_ns,
            end_time=span.end_ns,
            events=[
                Event(redact(e.name), otel_attributes(e.attributes, self._limit), e.time_ns)
                for e in span.events
            ],
            instrumentation_scope=self._scope,
        )


# A step's input or result may be up to the blob threshold (256 KiB): a batch of such spans
# would pass the exporter's request limit, be refused whole and block the outbox's head. A
# longer string is cut here (OTel's OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT, where set, instead).
VALUE_LIMIT = 16 * 1024


def otel_attributes(attributes: Mapping[str, Any], limit: int = VALUE_LIMIT) -> Attributes:
    """Values OTLP can carry (str, bool, int, float, lists of them); anything else as JSON,
    None left out, every string through the redactor and cut to `limit` characters."""
    out: Attributes = {}
    plain = not REDACTOR.active
    for key, value in attributes.items():
        kind = type(value)
        if kind is str and plain and len(value) <= limit:  # most values: nothing to do
            out[key] = value
            continue
        if kind is int or kind is bool or kind is float:
            out[key] = value
            continue
        if value is None:
            continue
        if not isinstance(value, str | bool | int | float) and not (
            isinstance(value, list | tuple)
            and all(isinstance(v, str | bool | int | float) for v in value)
        ):
            value = json.dumps(value, default=str)
        if isinstance(value, str):
            value = _clean(value, limit)
        elif isinstance(value, list | tuple):
            value = [_clean(v, limit) if isinstance(v, str) else v for v in value]
        out[key] = value
    return out


def _clean(text: str, limit: int) -> str:
    if REDACTOR.active:
        text = redact(text)
    return text if len(text) <= limit else text[:limit] + "…"


# -- building the exporter -------------------------------------------------------------------


class _Silenced(logging.Filter):
    """Drops the OTLP exporters' records, remembering the last one's message."""

    def __init__(self) -> None:
        super().__init__()
        self.last = ""

    def filter(self, record: logging.LogRecord) -> bool:
        self.last = record.getMessage()
        return False


_EXPORTER_LOG = _Silenced()


def _silence(exporter_module: str) -> None:
    logger = logging.getLogger(exporter_module)
    if _EXPORTER_LOG not in logger.filters:
        logger.addFilter(_EXPORTER_LOG)


def http_exporter(endpoint: str | None, headers: Mapping[str, str] | None) -> SpanExporter:
    """OTLP/HTTP protobuf to `endpoint` (the full /v1/traces URL), else to where the
    OTEL_EXPORTER_OTLP_* variables say."""
    try:
        from opentelemetry.exporter.otlp.proto.http import trace_exporter
    except ImportError as e:
        raise ConfigurationError(
            "OTLP over HTTP needs its exporter: pip install 'tether[otlp]'"
        ) from e
    _silence(trace_exporter.__name__)
    return trace_exporter.OTLPSpanExporter(endpoint=endpoint, headers=headers)


def grpc_exporter(endpoint: str | None, headers: Mapping[str, str] | None) -> SpanExporter:
    try:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter,
        )
    except ImportError as e:
        raise ConfigurationError(
            "OTLP over gRPC needs its exporter: pip install opentelemetry-exporter-otlp-proto-grpc"
        ) from e
    _silence(OTLPSpanExporter.__module__)
    exporter: SpanExporter = OTLPSpanExporter(endpoint=endpoint, headers=headers)
    return exporter


def _request_sender(exporter: SpanExporter) -> Callable[[bytes], bool] | None:
    """How the HTTP exporter sends an encoded request (with its configured endpoint, headers,
    compression, TLS, timeout and retries), so `otlp_encoding`'s bytes skip the SDK's own
    encoding. It is the exporter's private client (opentelemetry-exporter-otlp-proto-http
    1.45); an exporter without one (gRPC's, an older HTTP one) is fed `ReadableSpan`s.
    tests/trace/test_otlp_encoding.py asserts the HTTP exporter still has it, so a release
    that moves it fails a test rather than going quietly slow."""
    client = getattr(exporter, "_client", None)
    if client is None:
        return None

    def send(data: bytes) -> bool:
        return bool(client.export(data).success)

    return send


def exporter_target(exporter: SpanExporter, fallback: str | None) -> str:
    """Where the exporter sends, for warnings (never its headers, which may hold a key)."""
    return str(getattr(exporter, "_endpoint", None) or fallback or "the OTLP endpoint")


def batching() -> dict[str, Any]:
    """The outbox's bounds from the standard OTEL_BSP_* variables and the export timeout."""
    return {
        "capacity": int(_number("OTEL_BSP_MAX_QUEUE_SIZE", default=2048)),
        "batch": int(_number("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", default=512)),
        "delay": _number("OTEL_BSP_SCHEDULE_DELAY", default=5000) / 1000,
        "close_timeout": _number(
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT", default=10
        ),
    }


def _number(*names: str, default: float) -> float:
    """The first of these variables that is set, as a number."""
    for name in names:
        raw = os.environ.get(name)
        if raw:
            try:
                return float(raw)
            except ValueError as e:
                raise ConfigurationError(f"{name}={raw!r} is not a number") from e
    return default
