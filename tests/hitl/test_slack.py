"""The Slack transport through the unpatched slack_sdk against a local stand-in for Slack's Web
API: the request is posted with its buttons, a signed click decides it and updates the message,
and a forged, stale, foreign or replayed callback is refused and changes nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient

from tests.fakes.slack_server import SlackServer
from tether import RunStatus, Tether
from tether.foundation.hitl.contract import RequestState
from tether.server.app import create_app
from tether.server.auth import for_tether

SIGNING = "slack-signing-secret-for-tests"


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackServer]:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-token")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING)
    server = SlackServer()
    yield server
    server.close()


def _options(slack: SlackServer) -> dict[str, Any]:
    return {
        "slack": {
            "channel": "C-APPROVALS",
            "team_id": "T-OURS",
            "base_url": slack.base_url,
            "users": {"U-ALICE": {"subject": "alice", "roles": ["ops"]}},
        }
    }


def click(
    request_id: str,
    *,
    user: str = "U-ALICE",
    team: str = "T-OURS",
    action: str = "approve",
    secret: str = SIGNING,
    at: float | None = None,
) -> tuple[bytes, dict[str, str]]:
    """An interaction payload signed the way Slack signs it (v0, HMAC-SHA256)."""
    payload = {
        "type": "block_actions",
        "team": {"id": team},
        "user": {"id": user},
        "channel": {"id": "C-APPROVALS"},
        "container": {"message_ts": "1700000000.000001"},
        "actions": [{"action_id": action, "value": request_id}],
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    ts = str(int(at if at is not None else time.time()))
    digest = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    headers = {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    return body, headers


def test_a_signed_click_decides_and_forgeries_change_nothing(
    hitl: Callable[..., Tether], slack: SlackServer
) -> None:
    t = hitl(hitl_transports=_options(slack))
    run_id = t.start("deploy_gate", {"version": "5.0"})
    stop = threading.Event()
    t.run(run_id, stop=stop, on_wait=lambda _: stop.set())
    (posted,) = slack.calls
    assert posted["path"] == "/api/chat.postMessage" and posted["method"] == "POST"
    assert posted["auth"] == "Bearer xoxb-test-token"
    assert posted["body"]["channel"] == "C-APPROVALS" and "deploy" in posted["body"]["text"]
    buttons = posted["body"]["blocks"][-1]["elements"]
    rid = buttons[0]["value"]
    assert [b["action_id"] for b in buttons] == ["approve", "reject"]
    auth = for_tether(t)
    url = "/api/hitl/slack/actions"
    with TestClient(create_app(t, auth), raise_server_exceptions=False) as client:
        forged = click(rid, secret="not-the-secret")
        assert client.post(url, content=forged[0], headers=forged[1]).status_code == 401
        stale = click(rid, at=time.time() - 600)
        assert client.post(url, content=stale[0], headers=stale[1]).status_code == 401
        foreign = click(rid, team="T-OTHER")
        assert client.post(url, content=foreign[0], headers=foreign[1]).status_code == 403
        stranger = click(rid, user="U-MALLORY")
        assert client.post(url, content=stranger[0], headers=stranger[1]).status_code == 403
        assert t.approval(rid).state is RequestState.PENDING and len(slack.calls) == 1
        genuine = click(rid)
        ok = client.post(url, content=genuine[0], headers=genuine[1])
        assert ok.status_code == 200, ok.text
        assert ok.json()["decision"]["by"] == "alice"
        replayed = client.post(url, content=genuine[0], headers=genuine[1])
        assert replayed.status_code == 409 and "approved by alice" in replayed.text
    auth.close()
    updates = [c for c in slack.calls if c["path"] == "/api/chat.update"]
    assert len(updates) == 1
    assert updates[0]["body"]["ts"] == "1700000000.000001"
    assert "approved by alice" in updates[0]["body"]["text"]
    run = t.run(run_id)
    assert run.status is RunStatus.COMPLETED and t.output(run)["by"] == "alice"
