"""I4 TraceSink contract, run against every backend: what is emitted arrives whole, from any
thread, by the time `flush` or `close` returns (the OTLP family's `flush` only hands the spans
to its sending thread, so a run never waits on a collector: there `close` is what delivers).
Then the JSONL dump's own promises: it buffers (no write a span) but never longer than a full
buffer or a second, and two writers appending to one file leave whole lines."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.contract.backends import environment, installed
from tests.fakes.otlp_receiver import OtlpReceiver, WireSpan
from tests.fakes.s3_server import AWS, moto_server
from tether import Settings
from tether.foundation.loader import open_backend
from tether.foundation.trace.backends.jsonl import JsonlTraceSink
from tether.foundation.trace.backends.s3 import read_dump as read_s3_dump
from tether.foundation.trace.config import open_trace_sink
from tether.foundation.trace.contract import (
    Span,
    TraceSink,
    span_from_json,
    span_id_for,
    trace_id_for,
)

Reader = Callable[[], list[Span]]


def _span(i: int, **attributes: object) -> Span:
    return Span(
        trace_id=trace_id_for("run-1"),
        span_id=span_id_for("run-1", str(i)),
        parent_span_id=span_id_for("run-1", "run"),
        name=f"step s{i}",
        start_ns=1_000 * i,
        end_ns=1_000 * i + 500,
        status="ok" if i % 2 else "error",
        attributes={"tether.step.id": str(i), "gen_ai.usage.input_tokens": i, **attributes},
    )


OTLP_FAMILY = {
    "otlp": ("/v1/traces", {}),
    "phoenix": ("/v1/traces", {}),
    "langfuse": (
        "/api/public/otel/v1/traces",
        {"langfuse_public_key": "pk-lf-1", "langfuse_secret_key": "sk-lf-1"},
    ),
}
# what the vendor backends add for their UIs; the contract is about tether's own attributes
VENDOR_PREFIXES = ("openinference.", "langfuse.", "input.", "output.", "llm.", "tool.")


def from_wire(w: WireSpan) -> Span:
    return Span(
        trace_id=w.trace_id,
        span_id=w.span_id,
        parent_span_id=w.parent_span_id,
        name=w.name,
        start_ns=w.start_ns,
        end_ns=w.end_ns,
        kind=w.kind,
        status=w.status,
        attributes={k: v for k, v in w.attributes.items() if not k.startswith(VENDOR_PREFIXES)},
    )


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


def s3_sink(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> tuple[TraceSink, Reader]:
    import boto3

    for name, value in AWS.items():
        monkeypatch.setenv(name, value)
    bucket = f"contract-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    settings = Settings(trace="s3", trace_s3_url=f"s3://{bucket}", trace_s3_endpoint_url=endpoint)
    s3 = open_trace_sink(settings)

    def read() -> list[Span]:
        s3.close()
        return [
            span_from_json(line)
            for _, lines in read_s3_dump(f"s3://{bucket}", endpoint)
            for line in lines
        ]

    return s3, read


# How the suite reads back what each sink received; a sink missing here fails, asking for one.
READERS: dict[str, Callable[[Any], list[Span]]] = {
    "memory": lambda sink: list(sink.spans),
    "jsonl": lambda sink: sink.read(),
}
DROPS_SPANS = {"none"}  # `trace = "none"` keeps nothing by design


@pytest.fixture(params=installed("trace"))
def sink(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TraceSink, Reader]]:
    name = request.param
    if name in DROPS_SPANS:
        pytest.skip(f"trace backend {name!r} drops every span by design; nothing to read back")
    if name == "s3":
        s3, read = s3_sink(request.getfixturevalue("s3_endpoint"), monkeypatch)
        yield s3, read
        s3.close()
        return
    if name in READERS:
        with environment(name, "trace", tmp_path) as (settings, options):
            opened = open_backend("trace", name, TraceSink, settings, **options)
            yield opened, lambda: READERS[name](opened)
            opened.close()
        return
    if name not in OTLP_FAMILY:
        pytest.fail(f"no reader for trace backend {name!r}: add one to READERS")
    path, options = OTLP_FAMILY[request.param]
    receiver = OtlpReceiver(path)
    url = {"otlp": "otlp_endpoint", "phoenix": "phoenix_endpoint", "langfuse": "langfuse_host"}
    settings = Settings(data_dir=tmp_path, trace=request.param,
                        **{url[request.param]: receiver.url}, **options)  # fmt: skip
    otlp = open_trace_sink(settings)

    def read() -> list[Span]:
        otlp.close()
        return [from_wire(w) for w in receiver.spans]

    yield otlp, read
    otlp.close()
    receiver.close()


def test_every_emitted_span_arrives_whole_after_flush(sink: tuple[TraceSink, Reader]) -> None:
    s, read = sink
    sent = [_span(i, note="ünïcode ✓") for i in range(5)]
    for span in sent:
        s.emit(span)
    s.flush()
    assert read() == sent


def test_spans_from_several_threads_all_arrive(sink: tuple[TraceSink, Reader]) -> None:
    s, read = sink

    def emit(base: int) -> None:
        for i in range(200):
            s.emit(_span(base + i))

    threads = [threading.Thread(target=emit, args=(k * 1000,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    s.flush()
    got = read()
    assert len(got) == 800
    assert {sp.span_id for sp in got} == {_span(k * 1000 + i).span_id
                                          for k in range(4) for i in range(200)}  # fmt: skip


def test_close_delivers_what_is_buffered(tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl"
    s = JsonlTraceSink(path)
    s.emit(_span(1))
    assert not path.exists()  # buffered: the hot path made no write
    s.close()
    assert JsonlTraceSink(path).read() == [_span(1)]


def test_jsonl_buffer_goes_out_when_full(tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl"
    s = JsonlTraceSink(path, buffer_spans=3, buffer_seconds=3600)
    for i in range(5):
        s.emit(_span(i))
    assert len(path.read_text().splitlines()) == 3  # one full buffer written, two held
    s.close()


def test_jsonl_buffer_goes_out_once_its_oldest_span_is_a_second_old(tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl"
    s = JsonlTraceSink(path, buffer_spans=1000, buffer_seconds=0.2)
    s.emit(_span(1))
    time.sleep(0.3)
    s.emit(_span(2))  # the check runs as a span is emitted
    assert len(path.read_text().splitlines()) == 2
    s.close()


def test_two_writers_on_one_file_leave_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl"
    writers = [JsonlTraceSink(path, buffer_spans=7) for _ in range(2)]
    for i in range(500):
        for k, w in enumerate(writers):
            w.emit(_span(k * 10_000 + i))
    for w in writers:
        w.close()
    assert len(JsonlTraceSink(path).read()) == 1000  # every line parses as one span
