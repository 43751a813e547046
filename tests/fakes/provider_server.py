"""The HTTP half shared by the model provider test servers: a script of replies, a request log.

A test queues what the provider should answer next (a reply body, or an HTTP error with its
headers); with nothing queued the server answers in text, echoing the last user turn, so a
workflow can make any number of calls. Every request body is kept in `requests`, which is how a
test counts what the provider actually received.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Body = dict[str, Any]


@dataclass
class Failure:
    """An HTTP error the server sends instead of an answer."""

    status: int
    body: Body
    headers: dict[str, str] = field(default_factory=dict)


class ProviderServer:
    """Serves POST `path` on 127.0.0.1 at a free port until `close()`."""

    def __init__(
        self,
        path: str,
        answer: Callable[[Body, Body | None], Body],
        chunks: Callable[[Body], list[Body]] | None = None,
    ) -> None:
        self.path = path
        self._chunks = chunks  # an answer as the server-sent events of a streamed reply
        self.chunk_delay = 0.0  # seconds between two streamed events
        self.streamed = 0  # events sent so far, across requests
        self.cut_next_stream_after: int | None = None  # drop the next stream after N events
        self.requests: list[Body] = []
        self._answer = answer
        self._script: list[Body | Failure] = []
        self._lock = threading.Lock()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()

    @property
    def origin(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}"

    def queue(self, *replies: Body | Failure) -> None:
        with self._lock:
            self._script.extend(replies)

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    def handle(self, path: str, request: Body) -> tuple[int, Body, dict[str, str]]:
        if path != self.path:
            return 404, {"error": {"message": f"no route {path}"}}, {}
        with self._lock:
            self.requests.append(request)
            scripted = self._script.pop(0) if self._script else None
        if isinstance(scripted, Failure):
            return scripted.status, scripted.body, scripted.headers
        return 200, self._answer(request, scripted), {}


def words(value: Any) -> int:
    """The fake provider's own token count: whitespace-separated words of the JSON."""
    return len(json.dumps(value).split())


def _handler(server: ProviderServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = json.loads(self.rfile.read(length)) if length else {}
            status, payload, headers = server.handle(self.path, request)
            if status == 200 and request.get("stream") and server._chunks is not None:
                self._events(server._chunks(payload))
                return
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _events(self, events: list[Body]) -> None:
            """`data: {json}` per event and `data: [DONE]`, paced by `chunk_delay`; the
            connection closes at the end (no length), as a streamed reply does."""
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            cut, server.cut_next_stream_after = server.cut_next_stream_after, None
            try:
                for i, event in enumerate(events):
                    if i == cut:
                        return  # the connection closes with no finish: a dropped stream
                    self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                    self.wfile.flush()
                    server.streamed += 1
                    time.sleep(server.chunk_delay)
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client went away mid-stream (a killed worker)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # tests read outcomes, not access logs

    return Handler
