"""Stranded runs as the workers' heartbeats say (not as the server's own registry says), and
the cost of each workflow per day, through the API and the workflows page."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, timedelta
from decimal import Decimal

from tests.server.conftest import Served
from tether import RunStatus
from tether.foundation.checkpoint.contract import Hosted, NewRun
from tether.foundation.cost.contract import CostRecord


def _stranded(served: Served, viewer: dict[str, str]) -> dict[str, list[str]]:
    page = served.client.get("/api/runs", params={"stranded": True}, headers=viewer).json()
    return {r["id"]: page["resumers"][r["id"]] for r in page["runs"]}


def test_a_run_only_a_dead_worker_hosted_is_stranded_until_a_live_worker_resumes_it(
    served: Served, viewer: dict[str, str]
) -> None:
    t = served.tether
    t.checkpointer.create_run(
        NewRun(id="r-old", workflow="upgrade", version="1.0.0", input='{"seconds": 60}')
    )
    # A worker of 1.0.0 that heartbeat once and died: its row expires with its lease.
    t.checkpointer.record_worker("gone:1", [Hosted(workflow="upgrade", version="1.0.0")], 1.5)
    assert _stranded(served, viewer) == {}
    time.sleep(1.6)
    # The serving process registers upgrade@1.1.0 (resumes 1.0.*), but serves, runs nothing.
    assert _stranded(served, viewer) == {"r-old": ["1.0.0"]}
    html = served.client.get("/?stranded=true", headers={**viewer, "accept": "text/html"}).text
    assert "resumable by 1.0.0, with no live worker" in html

    worker = t.worker()
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        deadline = time.time() + 20
        while t.status("r-old").status is not RunStatus.SLEEPING and time.time() < deadline:
            time.sleep(0.05)
        assert t.status("r-old").status is RunStatus.SLEEPING  # 1.1.0 took it over
        assert _stranded(served, viewer) == {}
        page = served.client.get("/api/runs", headers=viewer).json()
        assert page["resumers"]["r-old"] == ["1.1.0", "1.0.0"]
    finally:
        worker.stop()
        thread.join(timeout=10)
    time.sleep(t.settings.lease_seconds + 0.2)  # the worker's own rows expire in turn
    assert _stranded(served, viewer) == {"r-old": ["1.1.0", "1.0.0"]}


def _call(run: str, workflow: str, usd: str) -> CostRecord:
    return CostRecord(
        run_id=run,
        workflow=workflow,
        step_id="0.1",
        backend="openai",
        provider="openai",
        model="gpt-4o-mini",
        input_tokens=10,
        output_tokens=5,
        usd=Decimal(usd),
        priced=True,
    )


def test_cost_per_workflow_per_day_comes_from_the_cost_rows(
    served: Served, viewer: dict[str, str]
) -> None:
    store = served.tether.foundations.cost.store
    store.record(_call("r1", "steps@1.0.0", "0.25"))
    store.record(_call("r2", "steps@1.0.0", "0.50"))
    store.record(_call("r3", "nap@1.0.0", "1.00"))
    store.record(_call("r4", "steps@1.0.0", "2.00"))
    recorded = store.calls("r1")[0].recorded_at
    assert recorded is not None
    today = recorded.astimezone(UTC).date()  # the store's day, even if the test spans midnight
    yesterday = recorded.astimezone(UTC) - timedelta(days=1)
    path = served.tether.settings.database_url_for("cost").removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:  # r4's call was made yesterday
        db.execute(
            "UPDATE cost_calls SET recorded_at = ? WHERE run_id = 'r4'", (yesterday.isoformat(),)
        )

    answer = served.client.get("/api/costs/daily", params={"days": 2}, headers=viewer)
    assert answer.status_code == 200, answer.text
    rows = [(d["day"], d["workflow"], d["cost"]["calls"], d["cost"]["usd"]) for d in answer.json()]
    assert rows == [
        (str(today), "nap@1.0.0", 1, "1.000000000000"),
        (str(today), "steps@1.0.0", 2, "0.750000000000"),
        (str(yesterday.date()), "steps@1.0.0", 1, "2.000000000000"),
    ]
    only_today = served.client.get("/api/costs/daily", params={"days": 1}, headers=viewer)
    assert len(only_today.json()) == 2
    assert served.client.get("/api/costs/daily?days=0", headers=viewer).status_code == 422

    page = served.client.get("/workflows", headers={**viewer, "accept": "text/html"}).text
    assert f'data-day="{today}" data-workflow="steps@1.0.0"' in page and "$0.7500" in page
