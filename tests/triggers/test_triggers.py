"""`tether triggers`: the seeds' D1-D10 are queries over what tether records. On an empty
database nothing is measurable; on one filled by the demo and a scripted load the decisions
are measured from those rows, and D6 and D7 fire once the load crosses their thresholds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tether import Tether
from tether.foundation.checkpoint.contract import EntryKind, JournalEntry, RunRecord, RunStatus
from tether.foundation.evals.contract import CaseResult, EvalConfig
from tether.foundation.evals.memory import MemoryEvalStore
from tether.foundation.evals.store import open_eval_store
from tether.foundation.identity.contract import Identity
from tether.settings import Settings
from tether.triggers import Evidence, State, evaluate, gather
from tether.triggers.evidence import ModelCall

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ["tests.triggers.flows", "workflows.research_report"]
VLLM = {"vllm": {"type": "openai", "base_url": "http://127.0.0.1:8000/v1"}}


def triggers(data_dir: Path, *args: str) -> tuple[int, dict[str, dict[str, Any]], str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TETHER_DATA_DIR": str(data_dir),
        "TETHER_WORKFLOWS": json.dumps(WORKFLOWS),
        "TETHER_MODEL_BACKENDS": json.dumps(VLLM),
        "TETHER_TRACE": "none",
    }
    done = subprocess.run(
        [sys.executable, "-m", "tether.cli", "triggers", *args],
        env=env, cwd=data_dir.parent, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    found = json.loads(done.stdout) if "--json" in args and done.returncode == 0 else []
    return done.returncode, {t["id"]: t for t in found}, done.stdout + done.stderr


def result(ref: str, score: float, route: str, run: str = "1") -> CaseResult:
    return CaseResult(
        eval_run=f"{ref}-{run}", ref=ref, workflow="support_triage", case_id=f"c{score}",
        cohorts=("all",), score=score, passed=True,
        config=EvalConfig(revision=ref, routes={"cheap_classify": [route]}),
    )  # fmt: skip


def test_an_empty_database_has_nothing_measurable_and_exits_0(tmp_path: Path) -> None:
    code, found, text = triggers(tmp_path / ".tether", "--json")
    assert code == 0, text
    assert list(found) == [f"D{i}" for i in range(1, 11)]
    assert {t["state"] for t in found.values()} == {"not measurable yet"}
    assert all(t["why"] for t in found.values())  # each says why
    code, _, table = triggers(tmp_path / ".tether")
    assert code == 0 and "D10" in table and "not measurable yet" in table


def test_a_window_that_is_not_one_is_refused_by_name(tmp_path: Path) -> None:
    code, _, text = triggers(tmp_path / ".tether", "--since", "soon")
    assert code == 2 and "--since" in text and "'soon'" in text and "Traceback" not in text


def test_the_demo_and_a_scripted_load_are_measured_and_d6_d7_fire_past_their_thresholds(
    make_tether: Callable[..., Tether], tmp_path: Path
) -> None:
    data = tmp_path / ".tether"
    t = make_tether(workflows=WORKFLOWS)
    settings = Settings(data_dir=data, model_backends=VLLM)

    def run(workflow: str, data_in: dict[str, Any]) -> str:
        run_id = t.start(workflow, data_in)
        t.run(run_id)
        return run_id

    run("research_report", {"topic": "durable background agents"})  # the demo's own run
    for _ in range(3):
        run("talkative", {"turns": 12})
    for approvers in (["role:ops"], ["role:legal"]):
        gated = t.start("ship_gate", {"approvers": approvers})
        parked = threading.Event()
        t.run(gated, stop=parked, on_wait=lambda _run, parked=parked: parked.set())
        (request,) = t.approvals(state="pending", run_id=gated)
        role = approvers[0].partition(":")[2]
        t.decide(request.id, "approved", identity=Identity(subject=f"{role}-lead", roles=(role,)))
        t.run(gated)
    evals = open_eval_store(settings)
    evals.record([result("main", 0.90, "anthropic/claude-sonnet-4-6")])
    evals.record([result("open-weight", 0.80, "vllm/llama-3.3-70b")])

    code, before, text = triggers(data, "--json")
    assert code == 0, text
    for measured in ("D1", "D4", "D6", "D7", "D9", "D10"):
        assert before[measured]["state"] != "not measurable yet", before[measured]
    assert "4 personas" in before["D1"]["measured"]  # two roles, two deciders
    assert "longest run" in before["D4"]["measured"] and before["D4"]["state"] == "not fired"
    # research_report makes fewer than 10 calls: lower its cap; talkative's 12 are in range
    assert before["D6"]["state"] == "fired" and "lower research_report to 25" in before["D6"]["why"]
    assert "talkative p95 12 of cap 50 over 3 runs" in before["D6"]["measured"]
    assert "talkative" not in before["D6"]["why"]
    d7 = before["D7"]  # the demo's save_report keeps a workspace; search and word_count don't
    assert d7["state"] == "not fired" and "1 of 3 tools keep state (33%)" in d7["measured"]
    assert before["D9"]["state"] == "not fired"  # the local models are the demo's stand-ins
    assert before["D10"]["state"] == "not fired" and "+10.0pp" in before["D10"]["measured"]

    for _ in range(3):  # cross D7's 50% and D6's raise threshold
        run("laconic", {"turns": 2, "tools": ["remember", "recall"]})
    capped = make_tether(
        workflows=WORKFLOWS, limits={"workflows": {"talkative": {"model_call_cap": 5}}}
    )
    over = capped.start("talkative", {"turns": 12})
    assert capped.run(over).status is RunStatus.FAILED
    evals.record([result("open-weight", 0.89, "vllm/llama-3.3-70b", run="2")])  # a better prompt
    evals.close()

    code, after, text = triggers(data, "--json")
    assert code == 0, text
    assert after["D7"]["state"] == "fired"
    assert "3 of 5 tools keep state (60%): recall, remember, save_report" in after["D7"]["measured"]
    assert after["D6"]["state"] == "fired" and "raise talkative to 200" in after["D6"]["why"]
    assert after["D10"]["state"] == "fired" and "+1.0pp" in after["D10"]["measured"]
    assert "support_triage" in after["D10"]["why"]


def _evidence(**fields: Any) -> Evidence:
    now = time.time()
    return Evidence(since=now - 86400 * 30, until=now, **fields)


def test_d4_fires_on_a_run_older_than_a_day_and_d9_on_a_second_closed_provider() -> None:
    now = time.time()
    old = RunRecord(id="r1", workflow="audit", version="1.0.0", status=RunStatus.WAITING,
                    input="{}", created_at=now - 25 * 3600, updated_at=now)  # fmt: skip
    wait = JournalEntry(run_id="r1", step_id="s", kind=EntryKind.EVENT, name="signed",
                        started_at=now - 7200, finished_at=now - 3600)  # fmt: skip
    settings = Settings(model_backends={"oai": {"type": "openai"}, **VLLM})
    calls = [
        ModelCall("r1", "anthropic", "claude", "internal"),
        ModelCall("r1", "oai", "gpt", "internal"),
    ]
    ev = _evidence(runs=[old], journals={"r1": [wait]}, model_calls=calls,
                   workflow_of={"r1": "audit"})  # fmt: skip
    found = {t.id: t for t in evaluate(ev, settings)}
    assert found["D4"].state is State.FIRED and "25.0 h" in found["D4"].measured
    assert "longest wait 1.0 h" in found["D4"].measured
    assert found["D9"].state is State.FIRED and "closed: anthropic, oai" in found["D9"].measured
    one = _evidence(runs=[old], journals={}, model_calls=calls[:1], workflow_of={"r1": "audit"})
    assert {t.id: t for t in evaluate(one, settings)}["D9"].state is State.NOT_FIRED
    restricted = [ModelCall("r1", "local", "rules-agent", "restricted")]
    routed = _evidence(runs=[old], model_calls=restricted, workflow_of={"r1": "audit"})
    assert {t.id: t for t in evaluate(routed, settings)}["D9"].state is State.NOT_FIRED
    local_only = [{"backend": "local", "model": "rules-agent", "family": "local-rules"}]
    by_sensitivity = Settings(model_routes={"agent:restricted": local_only})
    found = {t.id: t for t in evaluate(routed, by_sensitivity)}
    assert found["D9"].state is State.FIRED and "restricted" in found["D9"].why
    assert found["D3"].state is State.FIRED and "audit" in found["D3"].measured
    lanes = Settings(tools={"lanes": {"persistent_session": "daytona"}, "overrides": {"x": "e2b"}})
    d3 = {t.id: t for t in evaluate(routed, lanes)}["D3"]
    assert (
        "ephemeral local, persistent_session daytona, persistent_workspace local, x e2b" in d3.why
    )


def test_rows_older_than_the_window_are_not_measured(make_tether: Callable[..., Tether]) -> None:
    t = make_tether(workflows=WORKFLOWS)
    t.run(t.start("talkative", {"turns": 1}))
    evals = MemoryEvalStore()
    evals.record([result("main", 0.9, "anthropic/claude")])
    now = time.time()
    inside, later = gather(t, evals, now - 60), gather(t, evals, now + 60)
    assert len(inside.runs) == 1 and len(inside.evals) == 1 and len(inside.model_calls) == 1
    assert (
        inside.model_calls[0].backend == "local" and inside.model_calls[0].sensitivity == "internal"
    )
    assert later.runs == [] and later.evals == [] and later.model_calls == []
