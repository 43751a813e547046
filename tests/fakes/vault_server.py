"""A local server speaking the slice of Vault's KV v2 HTTP API that I7 uses.

It stands in for Vault when no real server binary is installed, so hvac's own request and
error-handling code still runs against HTTP: token check (403), read (404 for a missing
path), create-or-update with versions. It stores secrets in memory and holds one token.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class KV2Server:
    """Serves `/v1/<mount>/data/<path>` on 127.0.0.1 at a free port until `close()`."""

    def __init__(self, token: str, mount: str = "secret") -> None:
        self.token, self.mount = token, mount
        self.versions: dict[str, list[dict[str, Any]]] = {}
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}"

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    def handle(self, method: str, url: str, token: str | None, body: Any) -> tuple[int, Any]:
        if token != self.token:
            return HTTPStatus.FORBIDDEN, {"errors": ["permission denied"]}
        prefix = f"/v1/{self.mount}/data/"
        if not url.startswith(prefix):
            return HTTPStatus.NOT_FOUND, {"errors": [f"no handler for route {url!r}"]}
        path = url.removeprefix(prefix).split("?", 1)[0]
        if method == "GET":
            history = self.versions.get(path)
            if not history:
                return HTTPStatus.NOT_FOUND, {"errors": []}
            return HTTPStatus.OK, {"data": {"data": history[-1], "metadata": _meta(len(history))}}
        self.versions.setdefault(path, []).append(dict(body["data"]))
        return HTTPStatus.OK, {"data": _meta(len(self.versions[path]))}


def _meta(version: int) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    return {"created_time": now, "deletion_time": "", "destroyed": False, "version": version}


def _handler(server: KV2Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            status, payload = server.handle(
                self.command, self.path, self.headers.get("X-Vault-Token"), body
            )
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass  # tests read outcomes, not access logs

    return Handler
