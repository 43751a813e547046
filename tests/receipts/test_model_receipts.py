"""I12 through the runtime: a model call is journaled with its route and price, and a resumed
run never pays for a finished call again."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path

from tests.fakes.openai_server import OpenAIServer
from tests.receipts.conftest import on_openai
from tests.runtime.test_crash_resume import start_worker, wait_for
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
    worker = start_worker(tmp_path / ".tether", env)
    try:
        wait_for(marker.exists)  # both model calls are journaled; the step is stalling
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        worker.kill()
    assert len(openai_srv.requests) == 2
    resumed = start_worker(tmp_path / ".tether", env)
    try:
        wait_for(lambda: t.status(run_id).status is RunStatus.COMPLETED)
    finally:
        resumed.terminate()
        resumed.wait(10)
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
