"""What every vendor sandbox stand-in shares: a threaded HTTP server on a free port that keeps
the calls it received and the sandboxes it holds, and reads a request body whether or not the
SDK sends it chunked."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """An SDK that gave up on a call (its timeout) has closed the socket: not an error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class SandboxServer:
    def __init__(self, handler: Callable[[Any], type[BaseHTTPRequestHandler]]) -> None:
        self.calls: list[dict[str, Any]] = []
        self.sandboxes: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._http = _Server(("127.0.0.1", 0), handler(self))
        threading.Thread(target=self._http.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def requests(self) -> list[tuple[str, str]]:
        """(method, path) of every call, sandbox ids shown as `{id}`."""
        shown = []
        for c in self.calls:
            path = c["path"]
            for sid in self.sandboxes:
                path = path.replace(sid, "{id}")
            shown.append((c["method"], path))
        return shown

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()


def read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() != "chunked":
        return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
    chunks = []
    while size := int(handler.rfile.readline().split(b";")[0], 16):
        chunks.append(handler.rfile.read(size))
        handler.rfile.readline()
    handler.rfile.readline()
    return b"".join(chunks)
