"""The decision triggers over HTTP: `/api/triggers` answers what `tether triggers --json`
prints, and `/triggers` shows the same ten rows to a person signed in as a viewer."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.server.conftest import Served
from tether.server.auth import SESSION_COOKIE


def test_the_api_measures_the_ten_decisions_from_this_databases_runs(
    served: Served, viewer: dict[str, str]
) -> None:
    t = served.tether
    t.run(t.start("steps", {"n": 2}))
    answer = served.client.get("/api/triggers", params={"since": "1d"}, headers=viewer)
    assert answer.status_code == 200, answer.text
    found = {d["id"]: d for d in answer.json()}
    assert list(found) == [f"D{i}" for i in range(1, 11)]
    assert found["D4"]["state"] == "not fired" and "steps@1.0.0" in found["D4"]["measured"]
    assert found["D1"]["state"] == "not measurable yet"  # nobody asked for an approval
    bad = served.client.get("/api/triggers", params={"since": "soon"}, headers=viewer)
    assert bad.status_code in (400, 422) and "since" in bad.text and "Traceback" not in bad.text
    assert served.client.get("/api/triggers").status_code == 401


def test_the_page_shows_each_decision_with_its_state_and_why(served: Served) -> None:
    session = served.auth.provider.issue("vera", roles=("viewer",))
    client = TestClient(served.client.app, raise_server_exceptions=False)
    client.cookies.set(SESSION_COOKIE, session)
    client.headers["accept"] = "text/html"
    page = client.get("/triggers", params={"since": "7d"})
    assert page.status_code == 200
    assert all(f">D{i}<" in page.text for i in range(1, 11))
    assert "not measurable yet" in page.text and "last <strong>7d</strong>" in page.text
    assert 'href="/triggers"' in page.text  # in the navigation of every page
