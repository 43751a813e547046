"""Queues, debounce and throttle, streams and forks through the HTTP API: each answer, and what
it did to the database; each bad request a clear 4xx naming what is wrong."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.server.conftest import WORKFLOWS, Served
from tether import RunStatus, Tether
from tether.server.app import create_app
from tether.server.auth import for_tether


@pytest.fixture
def served(make_tether: Callable[..., Tether]) -> Iterator[Served]:
    """The usual served tether, with the queued reports workflow (2 running, 1 per customer)."""
    t = make_tether(workflows=[*WORKFLOWS, "tests.runtime.queued_flows"])
    auth = for_tether(t)
    with TestClient(create_app(t, auth), raise_server_exceptions=False) as client:
        yield Served(t, auth, client)
    auth.close()


def _sse(lines: Iterator[str]) -> list[tuple[str, str | None, dict[str, object]]]:
    """(event, id, data) of each event in a server-sent stream."""
    events, name, event_id = [], "", None
    for line in lines:
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("id: "):
            event_id = line.removeprefix("id: ")
        elif line.startswith("data: "):
            events.append((name, event_id, json.loads(line.removeprefix("data: "))))
            name, event_id = "", None
    return events


def test_a_start_goes_in_its_queue_with_the_key_and_priority_asked_for(
    served: Served, operator: dict[str, str]
) -> None:
    c, t = served.client, served.tether
    by_input = c.post("/api/runs", json={"workflow": "report", "input": {"customer": "acme"}},
                      headers=operator)  # fmt: skip
    asked = c.post(
        "/api/runs",
        json={"workflow": "report", "input": {"customer": "acme"}, "concurrency_key": "vip",
              "priority": 5},
        headers=operator,
    )  # fmt: skip
    assert by_input.status_code == asked.status_code == 201, asked.text
    first = t.status(by_input.json()["run_id"])
    assert (first.queue, first.queue_key, first.priority) == ("reports", "acme", 0)
    second = t.status(asked.json()["run_id"])
    assert (second.queue, second.queue_key, second.priority) == ("reports", "vip", 5)


def test_a_burst_of_debounced_starts_makes_one_pending_run_with_the_last_input(
    served: Served, operator: dict[str, str]
) -> None:
    ids = []
    for n in (1, 2, 3):
        body = {"workflow": "steps", "input": {"n": n},
                "debounce": {"key": "order-7", "period": 30}}  # fmt: skip
        answer = served.client.post("/api/runs", json=body, headers=operator)
        assert answer.status_code == 201, answer.text
        ids.append(answer.json()["run_id"])
    assert len(set(ids)) == 1
    run = served.tether.status(ids[0])
    assert run.status is RunStatus.PENDING and run.start_at is not None
    assert run.start_at > run.created_at + 29
    assert json.loads(run.input)["n"] == 3  # the last start's input
    assert [r.id for r in served.tether.list(workflow="steps")] == ids[:1]


def test_a_throttled_start_past_the_rate_waits_its_turn(
    served: Served, operator: dict[str, str]
) -> None:
    body = {"workflow": "steps", "input": {"n": 1}, "throttle": {"starts": 1, "per": 60}}
    first, second = (served.client.post("/api/runs", json=body, headers=operator) for _ in "12")
    assert first.status_code == second.status_code == 201
    now_run = served.tether.status(first.json()["run_id"])
    later = served.tether.status(second.json()["run_id"])
    assert now_run.start_at is None or now_run.start_at <= now_run.created_at
    assert later.start_at is not None and later.start_at >= later.created_at + 59


def test_bad_queue_debounce_and_throttle_requests_are_refused_and_start_nothing(
    served: Served, operator: dict[str, str]
) -> None:
    c = served.client
    for extra, field in [
        ({"debounce": {"key": "k", "period": 0}}, "body.debounce.period"),
        ({"debounce": {"key": "", "period": 5}}, "body.debounce.key"),
        ({"throttle": {"starts": 0, "per": 60}}, "body.throttle.starts"),
        ({"priority": "high"}, "body.priority"),
    ]:
        body = {"workflow": "steps", "input": {"n": 1}, **extra}
        answer = c.post("/api/runs", json=body, headers=operator)
        assert answer.status_code == 422, (extra, answer.text)
        assert field in answer.json()["message"], answer.text
    unknown = c.post("/api/runs", json={"workflow": "steps", "input": {"n": 1},
                                        "queue": "nowhere"}, headers=operator)  # fmt: skip
    assert unknown.status_code == 400 and "nowhere" in unknown.json()["message"]
    assert served.tether.list(workflow="steps") == []


def test_queues_show_limits_running_waiting_and_the_oldest_wait(
    served: Served, viewer: dict[str, str]
) -> None:
    t = served.tether
    for customer in ("acme", "bolt"):
        t.start("report", {"customer": customer})
    answer = served.client.get("/api/queues", headers=viewer)
    assert answer.status_code == 200, answer.text
    (reports,) = [
        q for q in answer.json() if q["name"] == "reports"
    ]  # others' modules declare theirs
    waited = reports.pop("oldest_wait_seconds")
    assert reports == {"name": "reports", "concurrency": 2, "per_key": 1, "starts": None,
                       "per": 60.0, "running": 0, "waiting": 2}  # fmt: skip
    assert waited is not None and waited >= 0

    page = served.client.get("/workflows", headers={**viewer, "accept": "text/html"})
    assert page.status_code == 200
    row = page.text.split('<tr data-queue="reports">', 1)[1].split("</tr>", 1)[0]
    assert "2 running, 1 per key" in row and "<td>0</td><td>2</td>" in row


def test_a_finished_runs_stream_is_sent_from_the_offset_asked_then_ends(
    served: Served, viewer: dict[str, str]
) -> None:
    t = served.tether
    run_id = t.start("streamer", {"n": 4})
    assert t.run(run_id).status is RunStatus.COMPLETED
    url = f"/api/runs/{run_id}/streams/progress"
    with served.client.stream("GET", url, params={"offset": 1}, headers=viewer) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = _sse(stream.iter_lines())
    assert events == [
        *(("value", str(i), {"offset": i, "value": {"i": i}, "attempt": 1,
                              "written_at": events[i - 1][2]["written_at"]})
          for i in (1, 2, 3)),
        ("end", None, {"status": "completed", "next_offset": 4}),
    ]  # fmt: skip
    # an EventSource reconnecting after value 2 sends its id back and gets only what followed
    resumed = {**viewer, "Last-Event-ID": "2"}
    with served.client.stream("GET", url, headers=resumed) as stream:
        assert [(e, i) for e, i, _ in _sse(stream.iter_lines())] == [("value", "3"), ("end", None)]


def test_a_stream_follows_a_running_run_live_and_ends_when_it_does(
    served: Served, viewer: dict[str, str], tmp_path: Path
) -> None:
    t = served.tether
    run_id = t.start("streamer", {"n": 3, "log": str(tmp_path / "log"), "pause": 0.3})
    runner = threading.Thread(target=t.run, args=(run_id,))
    url = f"/api/runs/{run_id}/streams/progress"
    with served.client.stream("GET", url, headers=viewer) as stream:
        runner.start()  # the stream is open before the run has written anything
        events = _sse(stream.iter_lines())
    runner.join()
    assert [(e, d.get("value")) for e, _, d in events] == [
        ("value", {"i": 0}), ("value", {"i": 1}), ("value", {"i": 2}), ("end", None)
    ]  # fmt: skip
    assert events[-1][2]["status"] == "completed"


def test_a_stream_of_an_unknown_run_is_404(served: Served, viewer: dict[str, str]) -> None:
    answer = served.client.get("/api/runs/no-such-run/streams/progress", headers=viewer)
    assert answer.status_code == 404 and "no-such-run" in answer.json()["message"]


def test_a_fork_from_a_step_runs_on_from_there_and_leaves_the_old_run(
    served: Served, operator: dict[str, str]
) -> None:
    t = served.tether
    old = t.start("steps", {"n": 4})
    assert t.run(old).status is RunStatus.COMPLETED
    answer = served.client.post(f"/api/runs/{old}/fork", json={"from_step": "3"},
                                headers=operator)  # fmt: skip
    assert answer.status_code == 201, answer.text
    new = answer.json()["run_id"]
    assert t.status(new).meta["forked_from"] == {"run": old, "step": "3"}
    assert [e.step_id for e in t.journal(new)] == ["1", "2"]  # what finished before step 3
    assert t.run(new).status is RunStatus.COMPLETED
    assert [e.step_id for e in t.journal(old)] == ["1", "2", "3", "4"]  # untouched


def test_a_fork_of_a_live_run_is_409_unless_it_cancels_the_original(
    served: Served, operator: dict[str, str]
) -> None:
    t = served.tether
    live = t.start("nap", {"seconds": 60})
    stop = threading.Event()
    t.run(live, stop=stop, on_wait=lambda _run: stop.set())
    assert t.status(live).status is RunStatus.SLEEPING
    url = f"/api/runs/{live}/fork"
    refused = served.client.post(url, json={"from_step": "1"}, headers=operator)
    assert refused.status_code == 409 and "sleeping" in refused.json()["message"]
    assert t.status(live).status is RunStatus.SLEEPING
    assert [r.id for r in t.list(workflow="nap")] == [live]

    forked = served.client.post(url, json={"from_step": "1", "cancel_original": True},
                                headers=operator)  # fmt: skip
    assert forked.status_code == 201, forked.text
    assert t.status(live).status is RunStatus.CANCELLED
    assert t.status(forked.json()["run_id"]).status is RunStatus.PENDING


def test_a_fork_from_a_step_never_reached_is_422_and_a_viewer_may_not_fork(
    served: Served, operator: dict[str, str], viewer: dict[str, str]
) -> None:
    t = served.tether
    done = t.start("steps", {"n": 2})
    t.run(done)
    url = f"/api/runs/{done}/fork"
    never = served.client.post(url, json={"from_step": "9"}, headers=operator)
    assert never.status_code == 422 and "never reached step '9'" in never.json()["message"]
    denied = served.client.post(url, json={"from_step": "1"}, headers=viewer)
    assert denied.status_code == 403
    assert [r.id for r in t.list(workflow="steps")] == [done]
