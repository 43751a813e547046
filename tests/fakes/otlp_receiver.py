"""A recording OTLP/HTTP receiver: what a collector, Phoenix or Langfuse would be sent.

It accepts `POST <path>` with an ExportTraceServiceRequest in protobuf (gzip or not), decodes
it with opentelemetry-proto, and keeps every request whole (method, path, headers, spans), so
a test can count spans at the wire: Phoenix deduplicates span ids on ingest, so counting there
proves nothing. Given `auth`, it answers 401 to a request without that Authorization header,
as Langfuse does.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status


@dataclass
class WireSpan:
    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: str  # internal | server | client | producer | consumer
    start_ns: int
    end_ns: int
    status: str  # unset | ok | error
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str
    events: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    spans: list[WireSpan] = field(default_factory=list)


class OtlpReceiver:
    """Serves on 127.0.0.1 at a free port until `close()`; `url` is its base URL."""

    def __init__(self, path: str = "/v1/traces", auth: str | None = None, port: int = 0) -> None:
        self.path, self.auth = path, auth
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._http = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def spans(self) -> list[WireSpan]:
        with self._lock:
            return [s for r in self.requests if r.spans for s in r.spans]

    def wait_for(self, ready: Callable[[list[WireSpan]], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not ready(self.spans):
            assert time.monotonic() < deadline, f"receiver has {len(self.spans)} spans"
            time.sleep(0.02)

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    def receive(self, request: Request, body: bytes) -> HTTPStatus:
        with self._lock:
            self.requests.append(request)
        if request.method != "POST" or request.path != self.path:
            return HTTPStatus.NOT_FOUND
        if self.auth is not None and request.headers.get("authorization") != self.auth:
            return HTTPStatus.UNAUTHORIZED
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        message = ExportTraceServiceRequest()
        message.ParseFromString(body)
        spans = list(_decode(message))
        with self._lock:
            request.spans = spans
        return HTTPStatus.OK


def _decode(message: ExportTraceServiceRequest) -> Any:
    for rs in message.resource_spans:
        resource = _attributes(rs.resource.attributes)
        for ss in rs.scope_spans:
            for s in ss.spans:
                yield WireSpan(
                    trace_id=s.trace_id.hex(),
                    span_id=s.span_id.hex(),
                    parent_span_id=s.parent_span_id.hex() or None,
                    name=s.name,
                    kind=ProtoSpan.SpanKind.Name(s.kind).removeprefix("SPAN_KIND_").lower(),
                    start_ns=s.start_time_unix_nano,
                    end_ns=s.end_time_unix_nano,
                    status=Status.StatusCode.Name(s.status.code)
                    .removeprefix("STATUS_CODE_")
                    .lower(),
                    attributes=_attributes(s.attributes),
                    resource=resource,
                    scope=ss.scope.name,
                    events=[
                        (e.name, e.time_unix_nano, _attributes(e.attributes)) for e in s.events
                    ],
                )


def _attributes(pairs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in pairs if isinstance(kv, KeyValue)}


def _value(v: AnyValue) -> Any:
    which = v.WhichOneof("value")
    if which == "array_value":
        return [_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return _attributes(v.kvlist_value.values)
    return None if which is None else getattr(v, which)


def _handler(receiver: OtlpReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = Request(
                self.command, self.path, {k.lower(): v for k, v in self.headers.items()}
            )
            status = receiver.receive(request, body)
            data = ExportTraceServiceResponse().SerializeToString() if status == 200 else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass  # tests read outcomes, not access logs

    return Handler
