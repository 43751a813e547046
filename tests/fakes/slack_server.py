"""A stand-in for Slack's Web API on 127.0.0.1: answers `chat.postMessage` and `chat.update`
the way slack.com does (`{"ok": true, "channel", "ts", "message"}`) and records each call's
method, path, Authorization header and body (JSON or form) for the test to assert on."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


class SlackServer:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._ts = 0
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}/api/"

    def answer(self, method: str, path: str, auth: str | None, body: dict[str, Any]) -> Any:
        with self._lock:
            self.calls.append({"method": method, "path": path, "auth": auth, "body": body})
            if auth != "Bearer xoxb-test-token":
                return {"ok": False, "error": "invalid_auth"}
            if path == "/api/chat.postMessage":
                self._ts += 1
                ts = f"1700000000.{self._ts:06d}"
                return {"ok": True, "channel": body["channel"], "ts": ts, "message": body}
            if path == "/api/chat.update":
                return {"ok": True, "channel": body["channel"], "ts": body["ts"]}
            return {"ok": False, "error": "unknown_method"}

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()


def _handler(server: SlackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            if self.headers.get("Content-Type", "").startswith("application/json"):
                body = json.loads(raw or "{}")
            else:
                body = {k: v[0] for k, v in parse_qs(raw).items()}
            answer = server.answer("POST", self.path, self.headers.get("Authorization"), body)
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
