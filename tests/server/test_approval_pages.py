"""The approvals page's forms as a browser posts them (session cookie, CSRF field, form body):
approve, edit-and-approve and refusals, each checked in I6 and in the run's output."""

from __future__ import annotations

import json
import threading

from fastapi.testclient import TestClient

from tests.server.conftest import Served
from tether import RunStatus
from tether.server.auth import SESSION_COOKIE


def _asking(served: Served, version: str) -> tuple[str, str]:
    """A deploy_gate run parked on its approval: (run id, request id)."""
    t = served.tether
    run_id = t.start("deploy_gate", {"version": version})
    stop = threading.Event()
    t.run(run_id, stop=stop, on_wait=lambda _: stop.set())
    (request,) = t.approvals(state="pending", run_id=run_id)
    return run_id, request.id


def _browser(served: Served, *roles: str, subject: str) -> tuple[TestClient, str]:
    """A client holding a session for `subject`, and that session's CSRF token."""
    session = served.auth.provider.issue(subject, roles=roles)
    client = TestClient(served.client.app, raise_server_exceptions=False)
    client.cookies.set(SESSION_COOKIE, session)
    client.headers["accept"] = "text/html"
    return client, served.auth.csrf_token(session)


def test_the_page_lists_a_pending_request_with_its_exact_action(served: Served) -> None:
    run_id, rid = _asking(served, "5.0")
    client, _ = _browser(served, "viewer", "ops", subject="alice")
    page = client.get("/approvals").text
    request = served.tether.approval(rid)
    assert f'data-request="{rid}"' in page and f"/runs/{run_id}" in page
    assert request.action.args_hash in page and "role:ops" in page
    assert "&#34;version&#34;: &#34;5.0&#34;" in page  # the arguments, as JSON
    assert f'action="/approvals/{rid}/edit"' in page


def test_edit_and_approve_releases_the_edited_arguments_and_names_who(served: Served) -> None:
    run_id, rid = _asking(served, "5.0")
    client, csrf = _browser(served, "viewer", "ops", subject="alice")
    edited = json.dumps({"version": "5.0.1"})
    answer = client.post(
        f"/approvals/{rid}/edit",
        data={"csrf": csrf, "args": edited, "reason": "use the patch"},
        follow_redirects=False,
    )
    assert answer.status_code == 303 and answer.headers["location"] == f"/approvals#r-{rid}"
    decided = served.tether.approval(rid)
    assert (decided.state.value, decided.decision and decided.decision.by) == ("edited", "alice")
    page = client.get("/approvals").text
    assert f'<tr id="r-{rid}"' in page and '<td class="by">alice</td>' in page
    assert served.tether.run(run_id).status is RunStatus.COMPLETED
    assert served.tether.output(served.tether.status(run_id))["args"] == {"version": "5.0.1"}


def test_a_refused_decision_shows_the_reason_and_changes_nothing(served: Served) -> None:
    _, rid = _asking(served, "6.0")
    mallory, csrf = _browser(served, "viewer", subject="mallory")
    refused = mallory.post(f"/approvals/{rid}/approve", data={"csrf": csrf})
    assert refused.status_code == 403 and "mallory may not decide" in refused.text
    assert served.tether.approval(rid).state.value == "pending"

    alice, alices = _browser(served, "viewer", "ops", subject="alice")
    assert alice.post(f"/approvals/{rid}/reject", data={"csrf": alices}).status_code == 200
    late, bobs = _browser(served, "operator", "ops", subject="bob")
    again = late.post(f"/approvals/{rid}/approve", data={"csrf": bobs})
    assert again.status_code == 409 and "rejected by alice" in again.text
    assert served.tether.approval(rid).decision.by == "alice"  # type: ignore[union-attr]
    bad = alice.post(f"/approvals/{rid}/edit", data={"csrf": alices, "args": "{oops"})
    assert bad.status_code == 422 and "not valid JSON" in bad.text
    no_csrf = alice.post(f"/approvals/{rid}/approve", data={})
    assert no_csrf.status_code == 403 and "CSRF" in no_csrf.text
