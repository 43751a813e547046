"""`/api/approvals`: the caller is the approver; 403 for a caller who is not one, 409 naming
who won for a second decision, 404 for an unknown request; a decision wakes the run."""

from __future__ import annotations

import threading

from tests.server.conftest import Served
from tether import RunStatus


def test_an_approver_decides_over_http(served: Served) -> None:
    t = served.tether
    run_id = t.start("deploy_gate", {"version": "4.0"})
    stop = threading.Event()
    t.run(run_id, stop=stop, on_wait=lambda _: stop.set())
    ops = {"Authorization": f"Bearer {served.token('viewer', 'ops', subject='alice')}"}
    sales = {"Authorization": f"Bearer {served.token('operator', subject='mallory')}"}
    listed = served.client.get("/api/approvals?state=pending", headers=ops)
    assert listed.status_code == 200
    (request,) = listed.json()
    rid = request["id"]
    assert request["action"]["args"] == {"version": "4.0"}
    assert served.client.get("/api/approvals/nope", headers=ops).status_code == 404
    refused = served.client.post(f"/api/approvals/{rid}/approve", json={}, headers=sales)
    assert refused.status_code == 403 and "mallory may not decide" in refused.text
    ok = served.client.post(f"/api/approvals/{rid}/approve", json={"reason": "go"}, headers=ops)
    assert ok.status_code == 200 and ok.json()["by"] == "alice"
    again = served.client.post(f"/api/approvals/{rid}/reject", json={}, headers=ops)
    assert again.status_code == 409 and "approved by alice" in again.text
    assert t.run(run_id).status is RunStatus.COMPLETED
    assert served.client.get(f"/api/approvals/{rid}", headers=ops).json()["state"] == "approved"
