"""tether writes OTLP requests itself (the SDK's encoder cost ~40 µs a span on a thread that
shares the GIL with the run); what it writes must be what the SDK's encoder would have sent."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tether import Settings
from tether.foundation.secrets.redaction import REDACTOR
from tether.foundation.trace.backends.phoenix import PhoenixTraceSink
from tether.foundation.trace.contract import Span, SpanEvent, span_id_for, trace_id_for

T0 = 1_790_000_000_000_000_000


def spans() -> list[Span]:
    trace, run = trace_id_for("run-9"), span_id_for("run-9", "run")
    return [
        Span(trace, run, "run research", T0, T0 + 9_000, kind="server",
             attributes={"tether.run.id": "run-9", "tether.run.status": "completed"}),
        Span(trace, span_id_for("run-9", "1", "1"), "model agent", T0 + 10, T0 + 500, run,
             attributes={"gen_ai.usage.input_tokens": 12, "gen_ai.usage.output_tokens": 3,
                         "tether.cost.usd": 0.0125, "tether.model.fell_back": False,
                         "tether.step.input": '{"q": "leases"}', "tether.step.output": "{}",
                         "offset": -7, "tools": ["search", "save"], "sizes": [1, 2],
                         "nested": {"a": [1]}, "note": "with hunter2-encoding", "none": None},
             events=[SpanEvent("policy allow", T0 + 10, {"tether.guard.rule": "default"}),
                     SpanEvent("budget allow", T0 + 500, {})]),
        Span(trace, span_id_for("run-9", "2", "1"), "tool hunter2-encoding", T0 + 600,
             T0 + 700, run, status="error",
             attributes={"error.type": "ToolFailed", "error.message": "boom"}),
        Span(trace, span_id_for("run-9", "3", "1"), "step quiet", T0 + 800, T0 + 900, run,
             status="error", attributes={}),
    ]  # fmt: skip


def test_the_request_tether_writes_is_the_one_the_sdk_would_send() -> None:
    REDACTOR.register("hunter2-encoding")
    sink = PhoenixTraceSink.from_settings(Settings(phoenix_endpoint="http://127.0.0.1:9"))
    try:
        ours = ExportTraceServiceRequest()
        ours.ParseFromString(sink._encoder.request(sink._wire(s) for s in spans()))
        theirs = encode_spans([sink.readable(s) for s in spans()])
    finally:
        sink.close()
    assert ours == theirs
    model = ours.resource_spans[0].scope_spans[0].spans[1]
    assert [e.name for e in model.events] == ["policy allow", "budget allow"]
    assert ours.resource_spans[0].scope_spans[0].spans[2].name == "tool ***"


def test_the_http_exporter_still_takes_encoded_requests() -> None:
    """The sink sends through the HTTP exporter's client; without it, it would fall back to
    the SDK's encoder, correct but four times the cost."""
    sink = PhoenixTraceSink.from_settings(Settings(phoenix_endpoint="http://127.0.0.1:9"))
    try:
        assert sink._post is not None
    finally:
        sink.close()
