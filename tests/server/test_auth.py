"""Who may do what over HTTP: bearer tokens and browser sessions through I8, roles checked and
audited in I9's log, CSRF on every change a browser asks for, loopback only without I8."""

from __future__ import annotations

import subprocess
import sys
import time

import jwt

from tests.server.conftest import Served
from tests.workers import ROOT
from tether import RunStatus
from tether.server.auth import SESSION_COOKIE


def test_no_token_is_401_and_nothing_is_started(served: Served) -> None:
    answer = served.client.post("/api/runs", json={"workflow": "steps", "input": {"n": 1}})
    assert answer.status_code == 401
    assert "Bearer" in answer.json()["message"] or "login link" in answer.json()["message"]
    assert served.tether.list() == []


def test_an_expired_or_forged_token_is_401(served: Served) -> None:
    expired = served.auth.provider.issue("ana", roles=("operator",), ttl_seconds=-10)
    claims = jwt.decode(served.token("viewer"), options={"verify_signature": False})
    forged = jwt.encode({**claims, "roles": ["operator"]}, "x" * 48, algorithm="HS256")
    for token, says in [(expired, "expired"), (forged, "signature"), ("junk", "malformed")]:
        answer = served.client.get("/api/runs", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401 and says in answer.json()["message"]


def test_a_viewer_reads_but_may_not_change_anything_and_the_refusal_is_audited(
    served: Served, viewer: dict[str, str]
) -> None:
    t = served.tether
    run_id = t.start("nap", {"seconds": 60})
    assert served.client.get(f"/api/runs/{run_id}", headers=viewer).status_code == 200
    refused = served.client.post(f"/api/runs/{run_id}/cancel", headers=viewer)
    assert refused.status_code == 403
    assert refused.json()["message"] == (
        "ana (viewer) may not cancel: needs the operator role (a viewer may only read and "
        "approve) (policy rule 'others-may-not')"
    )
    assert t.status(run_id).status is RunStatus.PENDING
    assert served.auth.audit is not None
    rows = served.auth.audit.query(run_id=run_id)
    assert [(r.who, r.outcome, r.kind, r.rule) for r in rows] == [
        ("ana", "deny", "api", "others-may-not")
    ]


def test_an_operator_changes_and_the_decision_is_audited(
    served: Served, operator: dict[str, str]
) -> None:
    run_id = served.tether.start("nap", {"seconds": 60})
    assert served.client.post(f"/api/runs/{run_id}/cancel", headers=operator).status_code == 200
    assert served.auth.audit is not None
    rows = served.auth.audit.query(run_id=run_id)
    assert [(r.outcome, r.target) for r in rows] == [("allow", f"POST /api/runs/{run_id}/cancel")]


def test_the_api_rules_decide_and_a_rule_change_changes_the_answer(make_tether, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Roles are I9 rules, not code: a deployment that lets viewers cancel, and keeps
    operators from retrying, gets exactly that."""
    from fastapi.testclient import TestClient

    from tests.server.conftest import WORKFLOWS
    from tether.server.app import create_app
    from tether.server.auth import for_tether

    (tmp_path / "api.yaml").write_text(
        "default: deny\n"
        "rules:\n"
        "  - {name: no-retries, effect: deny, action: retry, reason: retries go through on-call}\n"
        "  - {name: all-may-read, effect: allow, action: read, roles: [viewer, operator]}\n"
        "  - {name: viewers-cancel, effect: allow, action: cancel, roles: [viewer]}\n"
    )
    t = make_tether(workflows=WORKFLOWS, policy={"api_rules": str(tmp_path / "api.yaml")})
    auth = for_tether(t)
    viewer = {"Authorization": f"Bearer {auth.provider.issue('vic', roles=('viewer',))}"}
    operator = {"Authorization": f"Bearer {auth.provider.issue('ana', roles=('operator',))}"}
    run_id = t.start("nap", {"seconds": 60})
    with TestClient(create_app(t, auth), raise_server_exceptions=False) as client:
        refused = client.post(f"/api/runs/{run_id}/cancel", headers=operator)
        assert refused.status_code == 403
        assert "no rule matched; the default is deny (policy rule 'default')" in refused.text
        assert t.status(run_id).status is RunStatus.PENDING
        retry = client.post(f"/api/runs/{run_id}/retry", headers=operator)
        assert retry.status_code == 403 and "retries go through on-call" in retry.text
        assert client.post(f"/api/runs/{run_id}/cancel", headers=viewer).status_code == 200
    assert t.status(run_id).status is RunStatus.CANCELLED
    auth.close()


def test_a_misspelt_api_rule_stops_the_server_naming_the_file(make_tether, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import pytest

    from tether.errors import ConfigurationError
    from tether.server.auth import for_tether

    rules = tmp_path / "api.yaml"
    rules.write_text("rules:\n  - {name: viewers-cancel, effect: allow, acton: cancel}\n")
    t = make_tether(policy={"api_rules": str(rules)})
    with pytest.raises(ConfigurationError, match=f"(?s)bad policy rules in {rules}.*rules.0.acton"):
        for_tether(t)


def test_a_token_with_no_role_may_not_even_read(served: Served) -> None:
    answer = served.client.get("/api/runs", headers=served.as_role())
    assert answer.status_code == 403


def _sign_in(served: Served) -> str:
    link = served.auth.login_link()
    answer = served.client.get(f"/login?token={link}", follow_redirects=False)
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    return served.client.cookies[SESSION_COOKIE]


def test_a_login_link_works_once_and_sets_a_strict_http_only_session(served: Served) -> None:
    link = served.auth.login_link()
    assert served.client.get(f"/login?token={link}", follow_redirects=False).status_code == 303
    assert served.client.get("/api/runs").status_code == 200  # by the cookie alone
    served.client.cookies.clear()
    again = served.client.get(f"/login?token={link}", headers={"accept": "text/html"})
    assert again.status_code == 401 and "already used" in again.text


def test_a_browser_change_needs_the_csrf_token(served: Served) -> None:
    session = _sign_in(served)
    body = {"workflow": "steps", "input": {"n": 1}}
    without = served.client.post("/api/runs", json=body)
    assert without.status_code == 403 and without.json()["error"] == "csrf"
    wrong = served.client.post("/api/runs", json=body, headers={"X-CSRF-Token": "0" * 64})
    assert wrong.status_code == 403
    assert served.tether.list() == []
    token = served.auth.csrf_token(session)
    assert served.client.post("/api/runs", json=body, headers={"X-CSRF-Token": token}).is_success
    form = served.client.post(
        "/runs", data={"workflow": "steps", "input": '{"n": 1}', "csrf": token},
        follow_redirects=False,
    )  # fmt: skip
    assert form.status_code == 303
    assert len(served.tether.list()) == 2


def test_a_page_without_a_session_is_the_401_page(served: Served) -> None:
    answer = served.client.get("/", headers={"accept": "text/html"})
    assert answer.status_code == 401
    assert "Sign in to tether" in answer.text and "Traceback" not in answer.text


def test_serve_refuses_a_public_address_without_an_identity_provider(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "TETHER_DATA_DIR": str(tmp_path / ".tether"),
        "TETHER_TRACE": "none",
        "HOME": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-m", "tether.cli", "serve", "--host", "0.0.0.0", "--port", "0"],
        env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2
    assert "refusing to bind 0.0.0.0: no identity provider is configured" in done.stderr


def test_serve_prints_a_login_link_that_signs_a_browser_in_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import socket

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "TETHER_DATA_DIR": str(tmp_path / ".tether"),
        "TETHER_TRACE": "none",
        "HOME": str(tmp_path),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "tether.cli", "serve", "--port", str(port)],
        env=env, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )  # fmt: skip
    try:
        assert server.stderr is not None
        lines = [server.stderr.readline() for _ in range(3)]
        assert lines[0].startswith("database: ")
        link = lines[2].rsplit(" ", 1)[1].strip()
        assert link.startswith(f"http://127.0.0.1:{port}/login?token=")
        with httpx.Client() as browser:
            for _ in range(100):  # uvicorn binds just after printing
                try:
                    signed_in = browser.get(link, follow_redirects=True)
                    break
                except httpx.ConnectError:
                    time.sleep(0.05)
            assert signed_in.status_code == 200 and "<h1>Runs</h1>" in signed_in.text
        assert httpx.get(link).status_code == 401  # spent
    finally:
        server.terminate()
        server.wait(10)
