"""A stand-in for E2B on 127.0.0.1, speaking what its SDK sends, both halves on one port (as
`E2B_API_URL` and `E2B_SANDBOX_URL` may name one): the control plane, `POST /v2/sandboxes` and
`DELETE /sandboxes/{id}` with `X-API-Key`, and each sandbox's envd, routed by the
`E2B-Sandbox-Id` header with the `X-Access-Token` the create answered: `POST /files?path=`
(multipart) and `POST /process.Process/Start`, a Connect server stream in JSON (each message
enveloped: a flags byte, a 4-byte big-endian length; the last one, flagged 2, ends the
stream and carries any error).

It records every call's method, path, credential and body for the test to assert on, refuses
a wrong key or access token and a call to a killed sandbox, and really runs what it is asked
to (tests/fakes/sandbox_disk.py): each sandbox is a private directory standing for its disk,
gone when it is killed. A command runs for at most the deadline its client sent
(`Connect-Timeout-Ms`), then ends `deadline_exceeded`.
"""

from __future__ import annotations

import base64
import json
import shutil
import struct
import subprocess
import tempfile
from contextlib import suppress
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.sandbox_disk import run, write
from tests.fakes.sandbox_server import SandboxServer, read_body

KEY = "e2b_test_key"
ENVD_VERSION = "0.6.4"
CONNECT_JSON = "application/connect+json"


class E2BServer(SandboxServer):
    def __init__(self) -> None:
        super().__init__(_handler)

    def answer(self, method: str, url: str, headers: Any, raw: bytes) -> tuple[int, str, bytes]:
        parts = urlsplit(url)
        path, query = parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}
        sid = headers.get("E2B-Sandbox-Id")
        credential = headers.get("X-Access-Token") if sid else headers.get("X-API-Key")
        body: Any = raw
        content_type = headers.get("Content-Type", "")
        if content_type.startswith("multipart/form-data"):
            body = _files(content_type, raw)
        elif content_type == CONNECT_JSON:
            body = _unenvelope(raw)
        elif raw:
            body = json.loads(raw)
        with self._lock:
            self.calls.append({"method": method, "path": path, "query": query, "sandbox": sid,
                               "credential": credential, "body": body})  # fmt: skip
            if sid is None:
                return self._control(method, path, credential, body)
            box = self.sandboxes.get(sid)
            if box is None or box["killed"]:
                return _refused(content_type, 404, "not_found", f"sandbox {sid} not found")
            if credential != box["token"]:
                return _refused(content_type, 401, "unauthenticated", "invalid access token")
            if (method, path) == ("POST", "/files"):
                (data,) = body.values()
                write(box["root"], query["path"], data)
                name = query["path"].rsplit("/", 1)[-1]
                return _json(200, [{"name": name, "type": "file", "path": query["path"]}])
        if (method, path) == ("POST", "/process.Process/Start"):  # outside the lock: it runs
            return self._start(box["root"], body, headers.get("Connect-Timeout-Ms"))
        return _json(404, {"code": 404, "message": f"no route {method} {path}"})

    def _control(
        self, method: str, path: str, key: str | None, body: Any
    ) -> tuple[int, str, bytes]:
        if key != KEY:
            return _json(401, {"code": 401, "message": "Invalid API key"})
        if (method, path) == ("POST", "/v2/sandboxes"):
            sid = f"e2b{len(self.sandboxes) + 1}"
            self.sandboxes[sid] = {
                "token": f"envd-token-{sid}", "killed": False,
                "root": Path(tempfile.mkdtemp(prefix="fake-e2b-")),
            }  # fmt: skip
            return _json(201, {
                "templateID": body["templateID"], "sandboxID": sid, "clientID": "local",
                "envdVersion": ENVD_VERSION, "envdAccessToken": self.sandboxes[sid]["token"],
            })  # fmt: skip
        sid = path.removeprefix("/sandboxes/")
        box = self.sandboxes.get(sid)
        if method != "DELETE" or box is None or box["killed"]:
            return _json(404, {"code": 404, "message": f"sandbox {sid} not found"})
        box["killed"] = True
        shutil.rmtree(box["root"], ignore_errors=True)
        return 204, "application/json", b""

    def _start(self, root: Path, body: Any, deadline_ms: str | None) -> tuple[int, str, bytes]:
        (request,) = body
        process = request["process"]
        assert process["cmd"] == "/bin/bash" and process["args"][:2] == ["-l", "-c"], process
        timeout = int(deadline_ms) / 1000 if deadline_ms else None
        try:
            done = run(root, process["args"][2], timeout)
        except subprocess.TimeoutExpired:
            return _stream_end("deadline_exceeded", "the command ran past its deadline")
        events: list[dict[str, Any]] = [{"start": {"pid": 4242}}]
        for name, text in (("stdout", done.stdout), ("stderr", done.stderr)):
            if text:
                events.append({"data": {name: base64.b64encode(text.encode()).decode()}})
        events.append({"end": {"exitCode": done.returncode, "exited": True,
                               "status": f"exit status {done.returncode}"}})  # fmt: skip
        frames = b"".join(_envelope(0, {"event": e}) for e in events)
        return 200, CONNECT_JSON, frames + _envelope(2, {})


def _json(status: int, answer: Any) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(answer).encode()


def _envelope(flags: int, message: Any) -> bytes:
    data = json.dumps(message).encode()
    return struct.pack(">BI", flags, len(data)) + data


def _unenvelope(raw: bytes) -> list[Any]:
    messages = []
    while raw:
        flags, size = struct.unpack(">BI", raw[:5])
        assert flags == 0, f"a request message flagged {flags}"
        messages.append(json.loads(raw[5 : 5 + size]))
        raw = raw[5 + size :]
    return messages


def _stream_end(code: str, message: str) -> tuple[int, str, bytes]:
    """A Connect stream that ends at once in an error: status 200, the error in its trailer."""
    return 200, CONNECT_JSON, _envelope(2, {"error": {"code": code, "message": message}})


def _refused(content_type: str, status: int, code: str, message: str) -> tuple[int, str, bytes]:
    """A refusal in the protocol the request spoke: Connect's stream end, or plain JSON."""
    if content_type == CONNECT_JSON:
        return _stream_end(code, message)
    return _json(status, {"code": status, "message": message})


def _files(content_type: str, raw: bytes) -> dict[str, bytes]:
    """An upload's files by name (envd names each part by its destination path)."""
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw
    )
    return {
        part.get_filename() or "": part.get_payload(decode=True) for part in message.iter_parts()
    }


def _handler(server: E2BServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            status, content_type, data = server.answer(
                self.command, self.path, self.headers, read_body(self)
            )
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_POST = do_DELETE = _serve

        def handle(self) -> None:
            with suppress(ConnectionError):  # a client gone: closed, or past its deadline
                super().handle()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
