"""The webhook transport against a local receiver started here: each request is announced by a
signed POST whose method, path, headers and body the receiver checks, and a signed decision sent
back to tether's callback route decides it; a forged, stale, foreign-user, wrong-arguments or
replayed callback is refused and changes nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tether import RunStatus, Tether
from tether.foundation.hitl.backends.webhook import WebhookTransport
from tether.foundation.hitl.contract import Action, ApprovalError, ApprovalRequest, RequestState
from tether.server.app import create_app
from tether.server.auth import for_tether

SECRET = "webhook-secret-for-tests"
CALLBACK = "/api/hitl/webhook/decisions"


class Receiver:
    """An HTTP server on 127.0.0.1 that records every request and answers `status`."""

    def __init__(self, status: int = 204) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = status
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append(
                    {"method": "POST", "path": self.path, "headers": dict(self.headers),
                     "body": body}
                )  # fmt: skip
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                """Quiet."""

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}/hooks/approvals"

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    monkeypatch.setenv("TETHER_WEBHOOK_SECRET", SECRET)
    server = Receiver()
    yield server
    server.close()


def signed(payload: Any, *, secret: str = SECRET, at: float | None = None) -> dict[str, Any]:
    """A callback as the receiver sends it: the body and its v1 HMAC-SHA256 headers."""
    body = json.dumps(payload).encode()
    ts = str(int(at if at is not None else time.time()))
    mac = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-Tether-Timestamp": ts,
        "X-Tether-Signature": f"v1={mac}",
    }
    return {"content": body, "headers": headers}


def test_a_signed_decision_decides_and_forgeries_change_nothing(
    hitl: Callable[..., Tether], receiver: Receiver
) -> None:
    users = {"u-alice": {"subject": "alice", "roles": ["ops"]}}
    t = hitl(hitl_transports={"webhook": {"url": receiver.url, "users": users}})
    run_id = t.start("deploy_gate", {"version": "6.0"})
    stop = threading.Event()
    t.run(run_id, stop=stop, on_wait=lambda _: stop.set())

    (posted,) = receiver.received
    assert posted["method"] == "POST" and posted["path"] == "/hooks/approvals"
    headers = posted["headers"]
    assert headers["Content-Type"] == "application/json"
    assert abs(time.time() - int(headers["X-Tether-Timestamp"])) < 60
    mac = hmac.new(
        SECRET.encode(), headers["X-Tether-Timestamp"].encode() + b"." + posted["body"],
        hashlib.sha256,
    ).hexdigest()  # fmt: skip
    assert headers["X-Tether-Signature"] == f"v1={mac}"
    announced = json.loads(posted["body"])
    assert announced["type"] == "tether.approval.requested"
    request = announced["request"]
    assert request["action"] == {
        "name": "deploy", "args": {"version": "6.0"},
        "args_hash": Action.of("deploy", {"version": "6.0"}).args_hash,
    }  # fmt: skip
    assert request["run_id"] == run_id and request["approvers"] == ["role:ops"]

    rid, args_hash = request["id"], request["action"]["args_hash"]
    decision = {"request_id": rid, "verdict": "approved", "by": "u-alice", "args_hash": args_hash}
    auth = for_tether(t)
    with TestClient(create_app(t, auth), raise_server_exceptions=False) as client:
        refusals = {
            "forged": (signed(decision, secret="not-the-secret"), 401),
            "stale": (signed(decision, at=time.time() - 600), 401),
            "from the future": (signed(decision, at=time.time() + 600), 401),
            "unsigned": ({"content": json.dumps(decision).encode()}, 401),
            "unmapped user": (signed({**decision, "by": "u-mallory"}), 403),
            "no decision": (signed({"request_id": rid, "verdict": "maybe"}), 403),
            "other arguments": (signed({**decision, "args_hash": "sha256:0"}), 409),
            "unknown request": (signed({**decision, "request_id": "nope"}), 404),
        }
        for name, (call, status) in refusals.items():
            answer = client.post(CALLBACK, **call)
            assert answer.status_code == status, (name, answer.text)
        assert t.approval(rid).state is RequestState.PENDING
        assert t.status(run_id).status is RunStatus.WAITING
        genuine = signed({**decision, "reason": "ship"})
        ok = client.post(CALLBACK, **genuine)
        assert ok.status_code == 200, ok.text
        assert ok.json()["by"] == "alice" and ok.json()["verdict"] == "approved"
        replayed = client.post(CALLBACK, **genuine)
        assert replayed.status_code == 409 and "approved by alice" in replayed.text
    auth.close()
    history = t.approval(rid).history
    assert [h.event for h in history] == ["created", "approved"] and history[-1].by == "alice"
    run = t.run(run_id)
    assert run.status is RunStatus.COMPLETED and t.output(run)["by"] == "alice"
    assert len(receiver.received) == 1


def test_a_receiver_that_refuses_the_announcement_is_a_clear_error(
    receiver: Receiver,
) -> None:
    receiver.status = 500
    transport = WebhookTransport(url=receiver.url, secret=SECRET)
    request = ApprovalRequest(
        id="r:1", run_id="r", step_id="1", action=Action.of("deploy", {}), approvers=("ops",)
    )
    with pytest.raises(ApprovalError, match="answered 500 to request 'r:1'; it must answer 2xx"):
        transport.notify(request)
    with pytest.raises(ApprovalError, match="must be http"):
        WebhookTransport(url="ftp://x", secret=SECRET)


def test_an_edited_decision_by_webhook_sends_the_edited_arguments(
    hitl: Callable[..., Tether], receiver: Receiver, tmp_path: Path
) -> None:
    users = {"u-alice": {"subject": "alice", "roles": ["ops"]}}
    t = hitl(hitl_transports={"webhook": {"url": receiver.url, "users": users}})
    outbox = tmp_path / "outbox"
    run_id = t.start("gated_mail", {"outbox": str(outbox), "to": ["a@x.com"], "body": "hi"})
    stop = threading.Event()
    t.run(run_id, stop=stop, on_wait=lambda _: stop.set())
    request = json.loads(receiver.received[0]["body"])["request"]
    edited = {**request["action"]["args"], "body": "hello, politely"}
    decision = {
        "request_id": request["id"], "verdict": "edited", "by": "u-alice",
        "args_hash": request["action"]["args_hash"], "args": edited,
    }  # fmt: skip
    auth = for_tether(t)
    with TestClient(create_app(t, auth), raise_server_exceptions=False) as client:
        ok = client.post(CALLBACK, **signed(decision))
        assert ok.status_code == 200, ok.text
        assert ok.json()["action"]["args"] == edited
    auth.close()
    assert t.output(t.run(run_id)) == {"results": ["sent to a@x.com"]}
    assert outbox.read_text() == "a@x.com\thello, politely\n"
