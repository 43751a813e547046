"""A stand-in for Daytona's API on 127.0.0.1, speaking what its SDK sends: the control plane
at `/sandbox` (create, get by id or name, `/start`, `/stop`, delete) and the toolbox its
sandboxes name as `toolboxProxyUrl`, here `/toolbox/{id}/files/bulk-upload` (multipart) and
`/toolbox/{id}/process/execute`, each with `Authorization: Bearer <key>`.

It records every call's method, path, key and body for the test to assert on, refuses a wrong
key with 401, a second sandbox under a live name with 409 and a command in a stopped sandbox
with 409, and really runs what it is asked to (tests/fakes/sandbox_disk.py): each sandbox is a
private directory standing for its disk, so a session survives a stop exactly when it is on
disk. The SDK's event stream (`/socket.io/`) is not served: it polls the control plane
instead, and that answers every state at once.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from contextlib import suppress
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from tests.fakes.sandbox_disk import run, write
from tests.fakes.sandbox_server import SandboxServer, read_body

KEY = "dtn-test-key"


class DaytonaServer(SandboxServer):
    def __init__(self) -> None:
        super().__init__(_handler)

    def named(self, name: str) -> dict[str, Any]:
        (box,) = [b for b in self.sandboxes.values() if b["name"] == name]
        return box

    def _find(self, ident: str) -> tuple[str, dict[str, Any]] | None:
        for sid, box in self.sandboxes.items():
            if ident in (sid, box["name"]) and box["state"] != "destroyed":
                return sid, box
        return None

    def _dto(self, sid: str, box: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": sid, "organizationId": "org-test", "name": box["name"], "user": "daytona",
            "env": {}, "labels": box["labels"], "public": False,
            "networkBlockAll": box["network_block_all"], "kvm": False, "target": "us",
            "cpu": 1, "gpu": 0, "memory": 1, "disk": 3, "state": box["state"],
            "snapshot": box["snapshot"], "toolboxProxyUrl": f"{self.url}/toolbox",
        }  # fmt: skip

    def answer(
        self, method: str, url: str, auth: str | None, content_type: str, raw: bytes
    ) -> tuple[int, Any]:
        path = urlsplit(url).path
        if path.startswith("/socket.io/"):
            return 404, {"statusCode": 404, "message": "no event stream here"}
        body: Any = raw.decode(errors="replace")
        if content_type.startswith("multipart/form-data"):
            body = _files(content_type, raw)
        elif raw:
            body = json.loads(raw)
        with self._lock:
            self.calls.append({"method": method, "path": path, "auth": auth, "body": body})
            if auth != f"Bearer {KEY}":
                return 401, {"statusCode": 401, "message": "Unauthorized"}
            if (method, path) == ("POST", "/sandbox"):
                if self._find(body["name"]) is not None:
                    return 409, {"statusCode": 409, "message": f"{body['name']} exists"}
                sid = f"dtn-{len(self.sandboxes) + 1}"
                self.sandboxes[sid] = {
                    "name": body["name"], "labels": body["labels"], "state": "started",
                    "network_block_all": body["networkBlockAll"],
                    "snapshot": body.get("snapshot"),
                    "root": Path(tempfile.mkdtemp(prefix="fake-daytona-")),
                }  # fmt: skip
                return 200, self._dto(sid, self.sandboxes[sid])
            plane, ident, *rest = path.strip("/").split("/")
            found = self._find(ident)
            if found is None:
                return 404, {"statusCode": 404, "message": f"Sandbox {ident} not found"}
            sid, box = found
            action = "/".join(rest)
            if plane == "sandbox":
                if (method, action) == ("GET", ""):
                    return 200, self._dto(sid, box)
                if (method, action) == ("DELETE", ""):
                    box["state"] = "destroyed"
                    shutil.rmtree(box["root"], ignore_errors=True)
                    return 200, self._dto(sid, box)
                if (method, action) in {("POST", "start"), ("POST", "stop")}:
                    box["state"] = {"start": "started", "stop": "stopped"}[action]
                    return 200, self._dto(sid, box)
            elif box["state"] != "started":
                return 409, {"statusCode": 409, "message": f"Sandbox {sid} is {box['state']}"}
            elif (method, action) == ("POST", "files/bulk-upload"):
                for destination, data in body.items():
                    write(box["root"], destination, data)
                return 200, {}
        if (method, plane, action) == ("POST", "toolbox", "process/execute"):
            try:  # outside the lock: commands take time
                done = run(box["root"], body["command"], body.get("timeout"))
            except subprocess.TimeoutExpired:
                return 408, {"statusCode": 408, "message": "command execution timeout"}
            return 200, {"exitCode": done.returncode, "result": done.stdout}
        return 404, {"statusCode": 404, "message": f"no route {method} {path}"}


def _files(content_type: str, raw: bytes) -> dict[str, bytes]:
    """A bulk upload's files by destination: each `files[i].file` part names it as filename."""
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw
    )
    return {
        unquote(part.get_filename() or ""): part.get_payload(decode=True)
        for part in message.iter_parts()
        if part.get_param("name", header="content-disposition", failobj="").endswith(".file")
    }


def _handler(server: DaytonaServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            status, answer = server.answer(
                self.command, self.path, self.headers.get("Authorization"),
                self.headers.get("Content-Type", ""), read_body(self),
            )  # fmt: skip
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _serve

        def handle(self) -> None:
            with suppress(ConnectionError):  # a client gone: closed, or past its deadline
                super().handle()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
