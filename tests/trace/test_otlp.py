"""The OTLP family at the wire, against a recording receiver: tether's ids, times and tree
arrive as they were made; the standard OTEL_* variables configure it; a down collector neither
blocks nor fails anything and costs one warning with the count; secrets never leave."""

from __future__ import annotations

import base64
import logging
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from tests.fakes.otlp_receiver import OtlpReceiver
from tether import RunStatus, Settings, Tether
from tether.errors import ConfigurationError
from tether.foundation.secrets.redaction import REDACTOR
from tether.foundation.trace.backends.otlp import OtlpTraceSink, http_exporter
from tether.foundation.trace.config import open_trace_sink
from tether.foundation.trace.contract import Span, SpanEvent, span_id_for, trace_id_for


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    r = OtlpReceiver()
    yield r
    r.close()


def _span(i: int, **attributes: object) -> Span:
    return Span(
        trace_id=trace_id_for("run-1"),
        span_id=span_id_for("run-1", str(i)),
        parent_span_id=span_id_for("run-1", "run"),
        name=f"step s{i}",
        start_ns=1_700_000_000_000_000_000 + i,
        end_ns=1_700_000_000_000_000_500 + i,
        attributes=dict(attributes),
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def down_sink(port: int, **bounds: float) -> OtlpTraceSink:
    """A sink to a port nobody listens on (yet); set OTEL_EXPORTER_OTLP_TIMEOUT=1 first."""
    exporter = http_exporter(f"http://127.0.0.1:{port}/v1/traces", None)
    options = {"capacity": 4, "batch": 2, "delay": 0.05, "close_timeout": 2.0, **bounds}
    return OtlpTraceSink(exporter, target=f"127.0.0.1:{port}", **options)  # type: ignore[arg-type]


def test_a_runs_spans_arrive_with_tethers_ids_times_and_tree(
    make_tether: Callable[..., Tether], receiver: OtlpReceiver
) -> None:
    t = make_tether("sqlite", trace="otlp", otlp_endpoint=receiver.url)
    before = time.time_ns()
    run_id = t.start("steps", {"n": 3})
    assert t.run(run_id).status is RunStatus.COMPLETED
    t.sink.close()
    (request,) = [r for r in receiver.requests if r.spans]
    assert (request.method, request.path) == ("POST", "/v1/traces")
    assert request.headers["content-type"] == "application/x-protobuf"
    spans = {s.name: s for s in receiver.spans}
    assert sorted(spans) == ["run steps", "step step 0", "step step 1", "step step 2"]
    root = spans.pop("run steps")
    assert root.trace_id == trace_id_for(run_id) and root.parent_span_id is None
    assert root.span_id == span_id_for(run_id, "run") and root.kind == "server"
    assert root.resource["service.name"] == "tether" and root.scope == "tether"
    for s in spans.values():
        assert (s.trace_id, s.parent_span_id) == (root.trace_id, root.span_id)
        assert s.attributes["tether.run.id"] == run_id and s.status == "ok"
        assert before <= root.start_ns <= s.start_ns <= s.end_ns <= root.end_ns


def test_the_standard_otel_variables_configure_it(
    receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-team=agents")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "billing-agents")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    sink = open_trace_sink(Settings(trace="otlp"))
    sink.emit(_span(1))
    receiver.wait_for(lambda spans: len(spans) == 1, timeout=5)  # sent on the 50 ms schedule
    sink.close()
    assert receiver.requests[0].headers["x-team"] == "agents"
    assert receiver.spans[0].resource["service.name"] == "billing-agents"


def test_flush_sends_at_once_without_waiting_for_the_collector(receiver: OtlpReceiver) -> None:
    sink = open_trace_sink(Settings(trace="otlp", otlp_endpoint=receiver.url))  # 5 s schedule
    sink.emit(_span(1))
    started = time.monotonic()
    sink.flush()
    assert time.monotonic() - started < 0.05  # handed to the sending thread, not awaited
    receiver.wait_for(lambda spans: len(spans) == 1, timeout=2)
    sink.close()


def test_a_down_collector_blocks_nothing_and_costs_one_warning_with_the_count(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    caplog.set_level(logging.WARNING)
    sink = down_sink(free_port())
    started = time.monotonic()
    for i in range(50):
        sink.emit(_span(i))
        sink.flush()
    assert time.monotonic() - started < 0.1  # a run never waits on the exporter
    time.sleep(0.3)  # the first sends fail meanwhile
    started = time.monotonic()
    sink.close()
    assert time.monotonic() - started < 1.0  # known down: close does not try again
    # the exporter's own retry warnings and errors stay out of the log; its reason is kept
    (warning,) = [r.getMessage() for r in caplog.records]
    assert warning.startswith("dropped 50 spans bound for 127.0.0.1:"), warning
    assert "last error: Failed to export spans batch" in warning


def test_spans_buffered_while_the_collector_was_down_arrive_when_it_is_back(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    port = free_port()
    sink = down_sink(port, capacity=100)
    for i in range(3):
        sink.emit(_span(i))
    time.sleep(0.3)  # the first send fails; the batch stays buffered
    back = OtlpReceiver(port=port)
    try:
        back.wait_for(lambda spans: len(spans) == 3, timeout=5)  # the retry after 1 s
        with caplog.at_level(logging.WARNING, logger="tether.trace"):
            sink.close()
        assert sorted(s.name for s in back.spans) == ["step s0", "step s1", "step s2"]
        assert not [r for r in caplog.records if r.name == "tether.trace"]
    finally:
        back.close()


def test_secrets_are_struck_from_spans_before_they_leave(receiver: OtlpReceiver) -> None:
    REDACTOR.register("hunter2-otlp-secret")
    sink = OtlpTraceSink.from_settings(Settings(otlp_endpoint=receiver.url))
    sink.emit(_span(1, note="token hunter2-otlp-secret", args=["hunter2-otlp-secret"]))
    sink.close()
    (span,) = receiver.spans
    assert span.attributes["note"] == "token ***" and span.attributes["args"] == ["***"]


def test_guard_decisions_arrive_as_span_events_with_secrets_struck(
    receiver: OtlpReceiver,
) -> None:
    REDACTOR.register("hunter2-event-secret")
    span = _span(1)
    reason = "key hunter2-event-secret is not for tools"
    span.events = [
        SpanEvent("policy deny", span.start_ns, {"tether.guard.rule": "no-keys",
                                                 "tether.guard.reason": reason}),
    ]  # fmt: skip
    sink = OtlpTraceSink.from_settings(Settings(otlp_endpoint=receiver.url))
    sink.emit(span)
    sink.close()
    (wire,) = receiver.spans
    assert wire.events == [
        ("policy deny", span.start_ns,
         {"tether.guard.rule": "no-keys", "tether.guard.reason": "key *** is not for tools"}),
    ]  # fmt: skip


def test_long_values_are_cut_so_a_batch_stays_within_the_request_limit(
    receiver: OtlpReceiver,
) -> None:
    sink = OtlpTraceSink.from_settings(Settings(otlp_endpoint=receiver.url))
    sink.emit(_span(1, **{"tether.step.output": "x" * 300_000}))
    sink.close()
    (span,) = receiver.spans
    assert span.attributes["tether.step.output"] == "x" * 16 * 1024 + "…"


def test_an_unknown_protocol_or_a_missing_grpc_exporter_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="http/json"):
        OtlpTraceSink.from_settings(Settings(otlp_protocol="http/json"))
    try:
        import opentelemetry.exporter.otlp.proto.grpc  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigurationError, match="opentelemetry-exporter-otlp-proto-grpc"):
            OtlpTraceSink.from_settings(Settings(otlp_protocol="grpc"))


def test_langfuse_is_sent_to_its_otel_path_with_basic_auth(tmp_path: object) -> None:
    auth = "Basic " + base64.b64encode(b"pk-lf-1:sk-lf-1").decode()
    receiver = OtlpReceiver("/api/public/otel/v1/traces", auth=auth)
    try:
        keys = {"langfuse_public_key": "pk-lf-1", "langfuse_secret_key": "sk-lf-1"}
        sink = open_trace_sink(Settings(trace="langfuse", langfuse_host=receiver.url, **keys))
        sink.emit(_span(1))
        sink.close()
        (request,) = receiver.requests
        assert request.method == "POST" and request.headers["authorization"] == auth
        assert receiver.spans[0].attributes["langfuse.observation.type"] == "span"
    finally:
        receiver.close()


def test_langfuse_without_its_keys_says_which_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LANGFUSE_SECRET_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="TETHER_LANGFUSE_SECRET_KEY"):
        open_trace_sink(Settings(trace="langfuse", langfuse_public_key="pk-lf-1"))
