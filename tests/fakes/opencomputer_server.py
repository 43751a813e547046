"""A stand-in for OpenComputer's control-plane API on 127.0.0.1, speaking what its SDK sends:
`POST /api/sandboxes`, `GET|DELETE /api/sandboxes/{id}`, `PUT /api/sandboxes/{id}/files?path=`,
`POST /api/sandboxes/{id}/exec/run`, `/hibernate` and `/wake`, each authorised by `X-API-Key`.

It records every call's method, path, key and body for the test to assert on, refuses a wrong
key with 401 and a command in a hibernated sandbox with 409, and really runs what it is asked
to, as tests/fakes/sandbox_disk.py has it: each sandbox is a private directory standing for its
disk, `/tmp/` mapped into it, so a tool's state survives a hibernation exactly when it is on
disk.
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

KEY = "oc-test-key"


class OpenComputerServer(SandboxServer):
    def __init__(self) -> None:
        super().__init__(_handler)

    def answer(self, method: str, url: str, key: str | None, raw: bytes) -> tuple[int, Any]:
        parts = urlsplit(url)
        path, query = parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}
        body: Any = raw.decode(errors="replace")
        if method != "PUT" and raw:
            body = json.loads(raw)
        with self._lock:
            self.calls.append({"method": method, "path": path, "query": query, "key": key,
                               "body": body})  # fmt: skip
            if key != KEY:
                return 401, {"error": "invalid API key"}
            if (method, path) == ("POST", "/api/sandboxes"):
                sid = f"sb-{len(self.sandboxes) + 1}"
                self.sandboxes[sid] = {
                    "status": "running", "metadata": body.get("metadata", {}),
                    "template": body["templateID"],
                    "root": Path(tempfile.mkdtemp(prefix="fake-opencomputer-")),
                }  # fmt: skip
                return 201, {"sandboxID": sid, "status": "running"}
            _, _, sid, *rest = path.strip("/").split("/")
            box = self.sandboxes.get(sid)
            if box is None or box["status"] == "killed":
                return 404, {"error": f"sandbox {sid} not found"}
            action = "/".join(rest)
            if (method, action) == ("GET", ""):
                return 200, {"sandboxID": sid, "status": box["status"],
                             "templateID": box["template"]}  # fmt: skip
            if (method, action) == ("DELETE", ""):
                box["status"] = "killed"
                shutil.rmtree(box["root"], ignore_errors=True)
                return 200, {}
            if (method, action) == ("POST", "hibernate"):
                box["status"] = "hibernated"
                return 200, {}
            if (method, action) == ("POST", "wake"):
                box["status"] = "running"
                return 200, {}
            if box["status"] != "running":
                return 409, {"error": f"sandbox {sid} is {box['status']}"}
            if (method, action) == ("PUT", "files"):
                write(box["root"], query["path"], raw)
                return 200, {}
        if (method, action) == ("POST", "exec/run"):  # outside the lock: commands take time
            assert body["cmd"] == "sh" and body["args"][0] == "-c"
            try:
                done = run(box["root"], body["args"][1], body["timeout"])
            except subprocess.TimeoutExpired:
                return 200, {"exitCode": 124, "stdout": "", "stderr": "timed out"}
            return 200, {"exitCode": done.returncode, "stdout": done.stdout,
                         "stderr": done.stderr}  # fmt: skip
        return 404, {"error": f"no route {method} {path}"}


def _handler(server: OpenComputerServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, answer = server.answer(
                self.command, self.path, self.headers.get("X-API-Key"), raw
            )
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
