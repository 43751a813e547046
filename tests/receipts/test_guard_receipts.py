"""Guards through the runtime: caps, loops, budget pauses and policy denials stop or park a run,
leave an audit row and a span, and never let a refused call run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.fakes.openai_server import OpenAIServer
from tests.receipts.conftest import on_openai
from tests.workers import ROOT
from tether import RunStatus, Tether
from tether.foundation.checkpoint.contract import EntryKind, EntryStatus


def test_run_stops_at_model_call_51_with_budget_exceeded_and_an_audit_row(
    agent_tether: Callable[..., Tether],
) -> None:
    t = agent_tether()
    run = t.run(t.start("chatty", {"calls": 60}))
    assert run.status is RunStatus.FAILED
    assert json.loads(run.error or "{}")["type"] == "BudgetExceeded"
    models = [e for e in t.journal(run.id) if e.kind is EntryKind.MODEL]
    assert [e.status for e in models] == [EntryStatus.OK] * 50 + [EntryStatus.ERROR]
    trips = t.foundations.guards.audit.query(run_id=run.id, outcome="deny")
    assert [(r.guard, r.step_id) for r in trips] == [("budget", models[-1].step_id)]


def test_a_looping_run_is_stopped_by_loop_detected(
    agent_tether: Callable[..., Tether],
    tmp_path: Path,
) -> None:
    t = agent_tether()
    marker = tmp_path / "lookups.txt"
    run = t.run(t.start("looping", {"marker": str(marker)}))
    assert run.status is RunStatus.FAILED
    assert json.loads(run.error or "{}")["type"] == "LoopDetected"
    assert marker.read_text().splitlines() == ["same", "same"]  # the third never ran


def test_cost_cap_in_pause_mode_waits_durably_and_resumes_without_repeating_calls(
    agent_tether: Callable[..., Tether],
    openai_srv: OpenAIServer,
) -> None:
    t = agent_tether(limits={"cost_cap_usd": 1e-9, "on_cost_cap": "pause"}, **on_openai(openai_srv))
    run_id = t.start("chatty", {"calls": 3})
    paused = t.run(run_id)
    assert paused.status is RunStatus.PAUSED
    assert len(openai_srv.requests) == 1  # the first call spent past the cap; the second waits
    assert paused.lease_owner is None  # parked: no worker holds a paused run
    t.raise_budget(run_id, usd=1.0)
    done = t.run(run_id)
    assert done.status is RunStatus.COMPLETED
    assert len(openai_srv.requests) == 3  # no call was made twice
    assert t.foundations.cost.run_total(run_id).calls == 3


def test_policy_denied_tool_call_never_executes_and_is_in_the_audit_log_and_the_trace(
    agent_tether: Callable[..., Tether],
    tmp_path: Path,
) -> None:
    rules = tmp_path / "policy.yaml"
    rules.write_text(
        "rules:\n"
        "  - name: no-deletes\n"
        "    effect: deny\n"
        "    reason: agents may not delete customer data\n"
        "    tool: 'delete_*'\n"
    )
    t = agent_tether(policy={"rules": str(rules)})
    marker = tmp_path / "deleted.txt"
    run = t.run(t.start("cleanup", {"marker": str(marker)}))
    assert run.status is RunStatus.FAILED
    error = json.loads(run.error or "{}")
    assert error["type"] == "PolicyDenied" and "no-deletes" in error["message"]
    assert not marker.exists()
    (denial,) = t.foundations.guards.audit.query(run_id=run.id, outcome="deny")
    assert (denial.guard, denial.rule, denial.target) == ("policy", "no-deletes", "delete_records")
    spans = [
        json.loads(line)
        for line in (t.settings.data_path / "traces.jsonl").read_text().splitlines()
    ]
    refused = [s for s in spans if s.get("attributes", {}).get("tether.guard.rule") == "no-deletes"]
    assert refused and refused[0]["attributes"]["error.type"] == "PolicyDenied"


def test_tether_budget_raise_from_the_cli_wakes_the_paused_run(
    agent_tether: Callable[..., Tether], openai_srv: OpenAIServer, tmp_path: Path
) -> None:
    t = agent_tether(limits={"cost_cap_usd": 1e-9, "on_cost_cap": "pause"}, **on_openai(openai_srv))
    run_id = t.start("chatty", {"calls": 2})
    assert t.run(run_id).status is RunStatus.PAUSED
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TETHER_DATA_DIR": str(tmp_path / ".tether"),
        "TETHER_WORKFLOWS": json.dumps(["tests.receipts.agents"]),
    }
    bad = subprocess.run(
        [sys.executable, "-m", "tether.cli", "budget", "raise", run_id, "--usd", "-1"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "positive" in bad.stderr
    raised = subprocess.run(
        [sys.executable, "-m", "tether.cli", "budget", "raise", run_id, "--usd", "1"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert raised.returncode == 0, raised.stderr
    assert t.status(run_id).status is RunStatus.PENDING  # woken by the budget event
    assert t.run(run_id).status is RunStatus.COMPLETED
    assert len(openai_srv.requests) == 2
