"""The HTTP API as a script meets it: each operation's answer and what it did to the database,
and every failure a clear status and message (never a 500, never a traceback)."""

from __future__ import annotations

import time

from tests.server.conftest import Served
from tether import RunStatus


def test_a_started_run_is_in_the_database_and_the_same_key_returns_it(
    served: Served, operator: dict[str, str]
) -> None:
    body = {"workflow": "steps", "input": {"n": 2}, "key": "order-7"}
    first = served.client.post("/api/runs", json=body, headers=operator)
    again = served.client.post("/api/runs", json=body, headers=operator)
    assert first.status_code == again.status_code == 201
    run_id = first.json()["run_id"]
    assert again.json()["run_id"] == run_id
    run = served.tether.status(run_id)
    assert run.status is RunStatus.PENDING and run.key == "order-7"
    assert run.meta["identity"]["subject"] == "ana"  # who started it, from the token


def test_the_runs_list_pages_by_cursor_newest_first_without_repeats(
    served: Served, viewer: dict[str, str]
) -> None:
    ids = [served.tether.start("steps", {"n": 1}) for _ in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = served.client.get("/api/runs", params=params, headers=viewer).json()
        seen += [r["id"] for r in page["runs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))


def test_the_runs_list_filters_by_workflow_version_status_and_creation_time(
    served: Served, viewer: dict[str, str]
) -> None:
    t = served.tether
    nap = t.start("nap", {"seconds": 0.01})
    steps = t.start("steps", {"n": 1})
    t.run(steps)
    cut = time.time()
    later = t.start("steps", {"n": 1})

    def ids(**params: object) -> list[str]:
        answer = served.client.get("/api/runs", params=params, headers=viewer)
        assert answer.status_code == 200, answer.text
        return [r["id"] for r in answer.json()["runs"]]

    assert ids(workflow="nap") == [nap]
    assert ids(workflow="steps", version="1.0.0") == [later, steps]
    assert ids(workflow="steps", version="9.9.9") == []
    assert ids(status="completed") == [steps]
    assert ids(status=["pending"], workflow="steps") == [later]
    assert ids(created_after=cut) == [later]
    assert ids(created_before=cut) == [steps, nap]


def test_run_detail_has_the_journal_children_and_cost(
    served: Served, viewer: dict[str, str]
) -> None:
    t = served.tether
    run_id = t.start("parent", {"seconds": 0.01})
    t.run(run_id)
    detail = served.client.get(f"/api/runs/{run_id}", headers=viewer)
    assert detail.status_code == 200
    view = detail.json()
    assert view["run"]["status"] == "completed"
    assert [e["kind"] for e in view["journal"]] == ["invoke"]
    assert [c["workflow"] for c in view["children"]] == ["nap"]
    assert view["cost"]["calls"] == 0


def test_an_unknown_run_is_404_for_every_operation(
    served: Served, operator: dict[str, str]
) -> None:
    c = served.client
    answers = [
        c.get("/api/runs/nope", headers=operator),
        c.post("/api/runs/nope/cancel", headers=operator),
        c.post("/api/runs/nope/retry", headers=operator),
        c.post("/api/runs/nope/budget", json={"usd": 1}, headers=operator),
        c.post(
            "/api/runs/nope/resolve", json={"step_id": "1", "decision": "skip"}, headers=operator
        ),
        c.get("/api/stream/runs/nope", headers=operator),
    ]
    assert [a.status_code for a in answers] == [404] * len(answers)
    assert all(a.json()["error"] == "not_found" and "nope" in a.json()["message"] for a in answers)


def test_an_action_in_the_wrong_state_is_409_with_the_reason(
    served: Served, operator: dict[str, str]
) -> None:
    t = served.tether
    run_id = t.start("steps", {"n": 1})
    t.run(run_id)
    c = served.client
    for action, body in [
        ("cancel", None),
        ("retry", None),
        ("resolve", {"step_id": "1", "decision": "skip"}),
        ("budget", {"usd": 1}),
    ]:
        answer = c.post(f"/api/runs/{run_id}/{action}", json=body, headers=operator)
        assert answer.status_code == 409, (action, answer.text)
        assert "completed" in answer.json()["message"]
    assert t.status(run_id).status is RunStatus.COMPLETED


def test_a_sleeping_run_is_cancelled(served: Served, operator: dict[str, str]) -> None:
    t = served.tether
    run_id = t.start("nap", {"seconds": 60})
    assert t.run(run_id, stop=_stop_when_parked(t, run_id)).status is RunStatus.SLEEPING
    answer = served.client.post(f"/api/runs/{run_id}/cancel", headers=operator)
    assert answer.status_code == 200 and answer.json()["status"] == "cancelled"
    assert t.status(run_id).status is RunStatus.CANCELLED


def test_an_event_wakes_the_run_waiting_for_it(served: Served, operator: dict[str, str]) -> None:
    t = served.tether
    run_id = t.start("approval", {"ticket": "T-1"})
    t.run(run_id, stop=_stop_when_parked(t, run_id))
    answer = served.client.post(
        "/api/events",
        json={"name": "approved", "data": {"ticket": "T-1", "by": "bo"}},
        headers=operator,
    )
    assert answer.status_code == 200 and answer.json()["woken"] == [run_id]
    done = t.run(run_id)
    assert t.output(done) == {"answer": {"ticket": "T-1", "by": "bo"}}


def test_a_malformed_body_is_422_naming_the_field(served: Served, operator: dict[str, str]) -> None:
    c = served.client
    missing = c.post("/api/runs", json={"input": {}}, headers=operator)
    assert missing.status_code == 422
    assert "body.workflow" in missing.json()["message"]
    not_json = c.post(
        "/api/runs",
        content=b"{not json",
        headers={**operator, "content-type": "application/json"},
    )
    assert not_json.status_code == 422
    bad_input = c.post(
        "/api/runs", json={"workflow": "steps", "input": {"n": "x"}}, headers=operator
    )
    assert bad_input.status_code == 422
    assert bad_input.json()["fields"][0]["loc"] == ["n"]
    bad_budget = c.post("/api/runs/x/budget", json={"usd": -1}, headers=operator)
    assert bad_budget.status_code == 422 and "body.usd" in bad_budget.json()["message"]
    assert served.tether.list() == []


def test_a_body_over_the_limit_is_413_and_the_server_keeps_serving(
    served: Served, operator: dict[str, str]
) -> None:
    huge = b'{"workflow": "steps", "input": {"pad": "' + b"x" * (50 * 1024 * 1024) + b'"}}'
    answer = served.client.post(
        "/api/runs", content=huge, headers={**operator, "content-type": "application/json"}
    )
    assert answer.status_code == 413
    assert "limit" in answer.json()["message"]
    assert served.tether.list() == []
    assert served.client.get("/api/runs", headers=operator).status_code == 200


def test_a_chunked_body_over_the_limit_is_413(served: Served, operator: dict[str, str]) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"workflow": "steps", "input": {"pad": "'
        for _ in range(3):
            yield b"x" * (1024 * 1024)
        yield b'"}}'

    answer = served.client.post(
        "/api/runs", content=chunks(), headers={**operator, "content-type": "application/json"}
    )
    assert answer.status_code == 413


def test_schedules_are_added_listed_and_removed(served: Served, operator: dict[str, str]) -> None:
    c = served.client
    added = c.post(
        "/api/schedules",
        json={"name": "nightly", "cron": "0 3 * * *", "workflow": "steps", "input": {"n": 1}},
        headers=operator,
    )
    assert added.status_code == 201
    assert [s.name for s in served.tether.schedules()] == ["nightly"]
    assert [s["name"] for s in c.get("/api/schedules", headers=operator).json()] == ["nightly"]
    assert c.delete("/api/schedules/nightly", headers=operator).status_code == 204
    assert served.tether.schedules() == []
    assert c.delete("/api/schedules/nightly", headers=operator).status_code == 404


def test_workflows_list_their_versions_and_stranded_runs(
    served: Served, viewer: dict[str, str]
) -> None:
    from tether.foundation.checkpoint.contract import NewRun

    served.tether.checkpointer.create_run(
        NewRun(id="r-old", workflow="steps", version="0.1.0", input="{}")
    )
    found = {w["name"]: w for w in served.client.get("/api/workflows", headers=viewer).json()}
    assert found["steps"]["versions"] == ["1.0.0"]
    assert found["steps"]["stranded"] == 1
    assert found["upgrade"]["versions"] == ["1.1.0"]
    stranded = served.client.get("/api/runs", params={"stranded": True}, headers=viewer).json()
    assert [r["id"] for r in stranded["runs"]] == ["r-old"]
    costs = {
        c["workflow"]: c["cost"] for c in served.client.get("/api/costs", headers=viewer).json()
    }
    assert costs["steps@1.0.0"]["calls"] == 0


def test_a_bad_cursor_is_422(served: Served, viewer: dict[str, str]) -> None:
    answer = served.client.get("/api/runs", params={"cursor": "%%%"}, headers=viewer)
    assert answer.status_code == 422 and answer.json()["fields"][0]["loc"] == ["query", "cursor"]


def _stop_when_parked(t, run_id):  # type: ignore[no-untyped-def]
    """A stop event set by a thread once the run has parked: `Tether.run` then returns."""
    import threading

    stop = threading.Event()

    def watch() -> None:
        deadline = time.time() + 20
        while time.time() < deadline:
            if t.status(run_id).status in (RunStatus.SLEEPING, RunStatus.WAITING):
                stop.set()
                return
            time.sleep(0.02)

    threading.Thread(target=watch, daemon=True).start()
    return stop


def test_a_finished_runs_stream_sends_its_steps_and_status_then_ends(
    served: Served, viewer: dict[str, str]
) -> None:
    t = served.tether
    run_id = t.start("steps", {"n": 2})
    t.run(run_id)
    with served.client.stream("GET", f"/api/stream/runs/{run_id}", headers=viewer) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = [line for line in stream.iter_lines() if line.startswith("event:")]
    assert events == ["event: step", "event: step", "event: run"]


def test_the_runs_page_filter_form_with_any_chosen_lists_every_run(
    served: Served, viewer: dict[str, str]
) -> None:
    run_id = served.tether.start("steps", {"n": 1})
    html = {**viewer, "accept": "text/html"}
    page = served.client.get("/?workflow=&version=&status=", headers=html)
    assert page.status_code == 200 and f'data-run="{run_id}"' in page.text
    wrong = served.client.get("/?status=asleep", headers=html)
    assert wrong.status_code == 422 and "unknown status" in wrong.text


def test_a_client_that_leaves_an_event_stream_leaves_the_server_serving(
    served: Served, viewer: dict[str, str]
) -> None:
    import httpx

    from tests.server.browser import live_server

    with live_server(served.tether, served.auth) as base, httpx.Client(base_url=base) as client:
        for _ in range(3):  # each stream: its first event, then the client hangs up
            with client.stream("GET", "/api/stream/runs", headers=viewer) as stream:
                lines = stream.iter_lines()
                assert next(lines) == "event: runs"
        run_id = served.tether.start("steps", {"n": 1})
        with client.stream("GET", "/api/stream/runs", headers=viewer) as stream:
            lines = stream.iter_lines()
            assert next(lines) == "event: runs"
            assert run_id in next(lines)  # the data line: the list as it stands
        assert client.get("/api/runs", headers=viewer).status_code == 200
