"""I12 through the runtime: a model call is journaled with its route and price, and a resumed
run never pays for a finished call again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.fakes.openai_server import OpenAIServer
from tests.fakes.openai_server import text as openai_text
from tests.receipts.conftest import on_openai
from tests.workers import ROOT, kill_worker_when, run_worker_until
from tether import RunStatus, Tether
from tether.foundation.checkpoint.contract import EntryKind


def test_run_killed_after_its_second_model_call_resumes_without_paying_again(
    agent_tether: Callable[..., Tether],
    openai_srv: OpenAIServer,
    tmp_path: Path,
) -> None:
    routing = on_openai(openai_srv)
    t = agent_tether(**routing)
    marker = tmp_path / "work.txt"
    run_id = t.start("chat_then_work", {"marker": str(marker)})
    env = {
        "TETHER_WORKFLOWS": json.dumps(["tests.receipts.agents"]),
        "TETHER_MODEL_BACKENDS": json.dumps(routing["model_backends"]),
        "TETHER_MODEL_ROUTES": json.dumps(routing["model_routes"]),
    }
    # both model calls are journaled and the step is stalling: kill the worker there
    kill_worker_when(tmp_path / ".tether", marker.exists, env)
    assert len(openai_srv.requests) == 2
    run_worker_until(
        tmp_path / ".tether", lambda: t.status(run_id).status is RunStatus.COMPLETED, env
    )
    assert len(openai_srv.requests) == 3  # calls one and two came from the journal
    calls = t.foundations.cost.calls(run_id)
    assert len(calls) == 3 and all(c.usd > 0 for c in calls)


def test_model_entry_records_route_and_usage_for_inspect(
    agent_tether: Callable[..., Tether],
    openai_srv: OpenAIServer,
) -> None:
    t = agent_tether(**on_openai(openai_srv))
    run = t.run(t.start("chatty", {"calls": 1}))
    (entry,) = [e for e in t.journal(run.id) if e.kind is EntryKind.MODEL]
    routed = json.loads(entry.value or "{}")
    assert routed["decision"]["backend"] == "openai"
    assert routed["decision"]["model"] == "gpt-4o"
    assert routed["response"]["usage"]["input_tokens"] > 0
    assert t.foundations.cost.run_total(run.id).usd > 0


def test_routing_cheap_classify_to_openai_is_configuration_only(
    agent_tether: Callable[..., Tether], openai_srv: OpenAIServer
) -> None:
    ticket = {"ticket_id": "T-4", "text": "I was charged twice on my last invoice"}
    local = agent_tether(workflows=["workflows.support_triage"])
    on_local = local.output(local.run(local.start("support_triage", ticket)))
    routes = {"cheap_classify": [{"backend": "openai", "model": "gpt-4o-mini", "family": "gpt"}]}
    remote = agent_tether(
        workflows=["workflows.support_triage"],
        model_backends=on_openai(openai_srv)["model_backends"],
        model_routes=routes,
    )
    openai_srv.queue(openai_text("billing"))
    on_openai_ = remote.output(remote.run(remote.start("support_triage", ticket)))
    assert on_local == on_openai_ and on_local["label"] == "billing"
    assert len(openai_srv.requests) == 1  # the second run really asked the server


def test_inspect_shows_tokens_and_cost_per_call_and_the_total(
    openai_srv: OpenAIServer, tmp_path: Path
) -> None:
    routing = on_openai(openai_srv)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TETHER_DATA_DIR": str(tmp_path / ".tether"),
        "TETHER_WORKFLOWS": json.dumps(["tests.receipts.agents"]),
        "TETHER_MODEL_BACKENDS": json.dumps(routing["model_backends"]),
        "TETHER_MODEL_ROUTES": json.dumps(routing["model_routes"]),
        "COLUMNS": "200",
    }

    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "tether.cli", *args], env=env, capture_output=True,
            text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    run_id = json.loads(cli("run", "chatty", "--input", '{"calls": 2}', "--wait", "--json"))["id"]
    shown = cli("inspect", run_id)
    calls = [line for line in shown.splitlines() if "openai/gpt-4o" in line]
    assert len(calls) == 2 and all(" tok $0.0" in line for line in calls)
    assert "for 2 model calls" in shown and "cost   $0.0" in shown
    listed = cli("runs")
    assert "model calls 2, cost $0.0" in listed
    assert "chatty@1.0.0: $0.0" in listed and "over 2 model calls, all runs" in listed
