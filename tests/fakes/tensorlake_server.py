"""A stand-in for Tensorlake's sandbox API on 127.0.0.1, speaking what its SDK (a Rust client
underneath) sends: the control plane at `/v1/namespaces/default/sandboxes[/{id or name}]`
(create, get, `/suspend`, `/resume`, delete) and, on the same port as the sandbox proxy that
`sandbox_url` names, `PUT /api/v1/files?path=` and `POST /api/v1/processes/run` answered as a
server-sent event stream, each with `Authorization: Bearer <key>`.

It records every call's method, path, key and body, refuses a wrong key with 401, a second
sandbox under a live name with 409 and a command in a suspended sandbox with 409, and really
runs what it is asked to, as tests/fakes/sandbox_disk.py has it: each sandbox is a private directory
standing for its disk, `/tmp/` mapped into it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.sandbox_disk import run, write
from tests.fakes.sandbox_server import SandboxServer

KEY = "tl-test-key"
_SANDBOXES = "/v1/namespaces/default/sandboxes"


class TensorlakeServer(SandboxServer):
    def __init__(self) -> None:
        super().__init__(_handler)

    def _find(self, ident: str) -> tuple[str, dict[str, Any]] | None:
        for sid, box in self.sandboxes.items():
            if ident in (sid, box["name"]) and box["status"] != "terminated":
                return sid, box
        return None

    def _info(self, sid: str, box: dict[str, Any]) -> dict[str, Any]:
        routable = box["status"] == "running"
        return {
            "id": sid, "namespace": "default", "status": box["status"], "name": box["name"],
            "resources": {"cpus": 1.0, "memory_mb": 1024, "disk_mb": 1024},
            "network_policy": box["network"], "image": box["image"],
            "sandbox_url": self.url if routable else None,
        }  # fmt: skip

    def answer(
        self, method: str, url: str, host: str, key: str | None, raw: bytes
    ) -> tuple[int, Any]:
        parts = urlsplit(url)
        path, query = parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}
        body: Any = raw.decode(errors="replace")
        if method == "POST" and raw:
            body = json.loads(raw)
        with self._lock:
            self.calls.append({"method": method, "path": path, "query": query, "key": key,
                               "host": host, "body": body})  # fmt: skip
            if key != f"Bearer {KEY}":
                return 401, {"message": "invalid API key"}
            if (method, path) == ("POST", _SANDBOXES):
                name = body.get("name")
                if name and self._find(name):
                    return 409, {"message": f"sandbox name {name} is taken"}
                sid = f"sb-{len(self.sandboxes) + 1}"
                self.sandboxes[sid] = {
                    "name": name, "status": "running",
                    "network": body.get("network", {"allow_internet_access": True}),
                    "image": body.get("image"), "timeout_secs": body.get("timeout_secs"),
                    "root": Path(tempfile.mkdtemp(prefix="fake-tensorlake-")),
                }  # fmt: skip
                return 200, {"sandbox_id": sid, "status": "running", "name": name,
                             "sandbox_url": self.url}  # fmt: skip
            if path.startswith(_SANDBOXES + "/"):
                ident, _, action = path[len(_SANDBOXES) + 1 :].partition("/")
                found = self._find(ident)
                if found is None:
                    return 404, {"message": f"sandbox {ident} not found"}
                sid, box = found
                if (method, action) == ("GET", ""):
                    return 200, self._info(sid, box)
                if (method, action) == ("DELETE", ""):
                    box["status"] = "terminated"
                    shutil.rmtree(box["root"], ignore_errors=True)
                    return 200, {}
                if (method, action) in (("POST", "suspend"), ("POST", "resume")):
                    box["status"] = "suspended" if action == "suspend" else "running"
                    return 200, self._info(sid, box)
                return 404, {"message": f"no route {method} {path}"}
            # the sandbox proxy: the Rust client names the sandbox as the host `<id>.local`
            found = self._find(host.partition(".")[0])
            if found is None:
                return 404, {"message": f"no sandbox behind {host}"}
            sid, box = found
            if box["status"] != "running":
                return 409, {"message": f"sandbox {sid} is {box['status']}"}
            if (method, path) == ("PUT", "/api/v1/files"):
                write(box["root"], query["path"], raw)
                return 200, {}
        if (method, path) == ("POST", "/api/v1/processes/run"):  # outside the lock: it takes time
            command = [body["command"], *body.get("args", [])]
            assert command[:2] == ["sh", "-c"], command
            try:
                done = run(box["root"], command[2], body.get("timeout"))
            except subprocess.TimeoutExpired:
                return 200, [{"pid": 7}, {"exit_code": None, "signal": 9, "reason": "timed_out"}]
            lines = [{"line": line, "stream": "stdout", "timestamp": 1_700_000_000_000}
                     for line in done.stdout.splitlines()]  # fmt: skip
            return 200, [{"pid": 7}, *lines, {"exit_code": done.returncode}]
        return 404, {"message": f"no route {method} {path}"}


def _handler(server: TensorlakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # keep-alive, as the real service: the SDK's pooled connections otherwise race the
        # close of an HTTP/1.0 answer ("connection closed before message completed")
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, answer = server.answer(self.command, self.path, self.headers.get("Host", ""),
                                           self.headers.get("Authorization"), raw)  # fmt: skip
            if self.path.startswith("/api/v1/processes/run") and status == 200:
                data = b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in answer)
                kind = "text/event-stream"
            else:
                data, kind = json.dumps(answer).encode(), "application/json"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
