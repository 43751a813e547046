"""A captured run that waited for a person replays unattended: the event its wait received and
the decision an editor took on its approval are in the case as answers, served to the replayed
run's waits as it parks, so `tether eval run` needs no manual step and sends nothing twice."""

from __future__ import annotations

import threading
from pathlib import Path

from tether import Settings, Tether
from tether.evals.capture import capture
from tether.evals.harness import run_cases
from tether.foundation.evals.contract import CaseAnswer
from tether.foundation.identity.contract import Identity


def _until_parked(t: Tether, run_id: str) -> str:
    stop = threading.Event()
    return t.run(run_id, stop=stop, on_wait=lambda _: stop.set()).status.value


def _settings(tmp_path: Path, workflow: str) -> Settings:
    return Settings(data_dir=tmp_path / ".tether", trace="none", poll_interval=0.02,
                    workflows=[workflow])  # fmt: skip


def test_the_event_a_wait_received_is_captured_and_served_to_the_replayed_case(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path, "tests.runtime.flows")
    event = {"ticket": "T-7", "by": "dana"}
    with Tether(settings) as t:
        run_id = t.start("approval", {"ticket": "T-7"})
        assert _until_parked(t, run_id) == "waiting"
        t.send_event("approved", event)
        assert t.run(run_id).status.value == "completed"
        case = capture(t, run_id).case
    assert case.answers == (CaseAnswer(wait="approval", data=event),)
    assert case.events == ()  # nothing to send by hand
    [replayed] = run_cases(settings, t.registry.get("approval"), [case], {}, timeout=30)
    assert replayed.error is None, replayed.error
    assert replayed.output == case.reference == {"answer": event}

    unanswered = case.model_copy(update={"answers": ()})
    [stuck] = run_cases(settings, t.registry.get("approval"), [unanswered], {}, timeout=1)
    assert stuck.error is not None and "still waiting after 1s" in stuck.error


def test_a_support_leads_approval_to_page_is_captured_and_given_again(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "workflows.support_triage")
    ticket = {"ticket_id": "T-8", "text": "The whole site is down, every page returns 500 errors"}
    with Tether(settings) as t:
        run_id = t.start("support_triage", ticket)
        assert _until_parked(t, run_id) == "waiting"
        [request] = t.approvals(state="pending", run_id=run_id)
        lead = Identity(subject="dana", roles=("support-leads",))
        t.decide(request.id, "approved", identity=lead, reason="real outage")
        assert t.run(run_id).status.value == "completed"
        case = capture(t, run_id).case
    [answer] = case.answers
    assert answer.data["decision"]["by"] == "dana"
    [replayed] = run_cases(settings, t.registry.get("support_triage"), [case], {}, timeout=30)
    assert replayed.error is None, replayed.error
    assert replayed.output == case.reference
    assert replayed.output["paged"] is True and replayed.output["decided_by"] == "dana"


def test_an_editors_approval_is_captured_and_decided_again_on_the_replayed_request(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path, "workflows.research_report")
    report = {"topic": "durable agents", "questions": 1, "review_pause_seconds": 0,
              "publish": True}  # fmt: skip
    with Tether(settings) as t:
        run_id = t.start("research_report", report)
        assert _until_parked(t, run_id) == "waiting"
        [request] = t.approvals(state="pending", run_id=run_id)
        t.decide(request.id, "approved", identity=Identity(subject="ed", roles=("editor",)),
                 reason="reads well")  # fmt: skip
        assert t.run(run_id).status.value == "completed"
        case = capture(t, run_id).case
    [answer] = case.answers
    assert answer.wait == "approval:wait" and answer.data["decision"]["by"] == "ed"
    assert "send_report" in {f.tool for f in case.fixtures}
    outbox = sorted((tmp_path / ".tether").rglob("outbox.txt"))
    sent = [p.read_text() for p in outbox]
    assert len(sent) == 1 and len(sent[0].splitlines()) == 1  # the recorded run's one send

    [replayed] = run_cases(settings, t.registry.get("research_report"), [case], {}, timeout=30)
    assert replayed.error is None, replayed.error
    assert replayed.output == case.reference
    # the replay's send was served from the fixture: the real outbox holds the one send
    assert [p.read_text() for p in sorted((tmp_path / ".tether").rglob("outbox.txt"))] == sent
