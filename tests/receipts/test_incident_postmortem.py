"""The third reference workflow, run under its own example configuration
(examples/incident_postmortem/tether.toml) with the drafting backend pointed at a local server
speaking OpenAI's wire format: the happy path end to end, the HITL pause and both answers to it,
the second model backend's route, the lane override, and the golden set."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.openai_server import OpenAIServer, text
from tether import RunStatus, Settings, Tether
from tether.foundation.identity.contract import Identity
from tether.foundation.tools.backends.bubblewrap import BubblewrapLanes
from tether.foundation.tools.local import LocalLanes
from workflows.incident_postmortem import fetch_timeline, publish_postmortem, render_timeline

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "incident_postmortem" / "tether.toml"
LEAD = Identity(subject="ana", roles=("sre-lead",))
DRAFT = "Impact: checkout was slow for 18 minutes. Root cause: a doubled client timeout."


@pytest.fixture
def drafts() -> Iterator[OpenAIServer]:
    server = OpenAIServer()
    yield server
    server.close()


@pytest.fixture
def tether(
    tmp_path: Path, drafts: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Tether]:
    """The example configuration as shipped, but for the drafting server's address."""
    config = tmp_path / "tether.toml"
    config.write_text(EXAMPLE.read_text().replace("http://127.0.0.1:8000/v1", drafts.base_url))
    monkeypatch.setenv("TETHER_CONFIG_FILE", str(config))
    t = Tether(Settings(data_dir=tmp_path / ".tether", trace="none", poll_interval=0.02))
    yield t
    t.close()


def park(t: Tether, run_id: str) -> RunStatus:
    stop = threading.Event()
    t.run(run_id, stop=stop, on_wait=lambda _run: stop.set())
    return t.status(run_id).status


def test_a_postmortem_is_drafted_on_the_second_backend_and_published_once_approved(
    tether: Tether, drafts: OpenAIServer, tmp_path: Path
) -> None:
    drafts.queue(text(DRAFT))
    run_id = tether.start("incident_postmortem", {"incident_id": "INC-101"})
    assert park(tether, run_id) is RunStatus.WAITING  # the HITL pause: no process held
    (request,) = tether.approvals(state="pending", run_id=run_id)
    assert request.action.name == "publish_postmortem" and request.approvers == ("role:sre-lead",)
    assert DRAFT in request.action.args["body"]  # the approver reads the exact text
    tether.decide(request.id, "approved", identity=LEAD, reason="accurate")
    done = tether.run(run_id)
    assert done.status is RunStatus.COMPLETED, done.error
    out = tether.output(done)
    assert (out["severity"], out["duration_minutes"], out["draft"]) == ("SEV2", 18, DRAFT)
    assert (out["published_to"], out["decided_by"]) == ("INC-101.md", "ana")
    page = tmp_path / ".tether" / "tools" / "workspaces" / "postmortems" / "INC-101.md"
    assert page.read_text() == f"# Postmortem: INC-101 (SEV2)\n\n{request.action.args['body']}\n"
    # the drafting task class, and only it, went to the OpenAI-compatible server
    (sent,) = drafts.requests
    assert sent["model"] == "qwen2.5-7b-instruct"
    assert sent["messages"][0]["role"] == "system" and "blameless" in sent["messages"][0]["content"]
    assert sent["messages"][1]["content"].startswith("Incident INC-101, SEV2, 18 minutes.")


def test_a_rejected_postmortem_is_not_published(
    tether: Tether, drafts: OpenAIServer, tmp_path: Path
) -> None:
    run_id = tether.start("incident_postmortem", {"incident_id": "INC-102"})
    assert park(tether, run_id) is RunStatus.WAITING
    (request,) = tether.approvals(state="pending", run_id=run_id)
    tether.decide(request.id, "rejected", identity=LEAD, reason="root cause is wrong")
    out = tether.output(tether.run(run_id))
    assert (out["severity"], out["published_to"], out["decided_by"]) == ("SEV1", None, "ana")
    assert not (tmp_path / ".tether" / "tools" / "workspaces" / "postmortems").exists()
    assert len(drafts.requests) == 1  # the resumed run did not draft again


def test_render_timeline_alone_runs_on_the_lane_the_override_names(tether: Tether) -> None:
    lanes = tether.foundations.tools.lanes
    assert isinstance(lanes.backend_for(render_timeline), BubblewrapLanes)
    for other in (fetch_timeline, publish_postmortem):
        assert type(lanes.backend_for(other)) is LocalLanes


def test_the_golden_set_passes_tether_eval_run(tmp_path: Path) -> None:
    env = {
        **os.environ, "PYTHONPATH": str(ROOT), "TETHER_DATA_DIR": str(tmp_path / ".tether"),
        "TETHER_WORKFLOWS": "workflows.incident_postmortem", "TETHER_CONFIG_FILE": "",
    }  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "tether.cli", "eval", "run", "incident_postmortem", "--ref", "t"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if "│" in line]
    verdicts = {row.split("│")[1].strip(): row.split("│")[4].strip() for row in rows}
    assert verdicts == {"checkout-latency": "pass", "database-disk-full": "pass"}
