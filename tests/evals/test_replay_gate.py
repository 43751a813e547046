"""The replay gate: `tether replay` re-executes recorded journals against the installed code.
An unchanged workflow replays all 50 runs faithfully; a changed step order is caught, naming the
step; a run no registered version can resume is reported; the recorded database is untouched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import tests.evals.flows as flows
from tether import Tether
from tether.cli.app import app
from tether.evals.replay import LiveRuns, replay_runs
from tether.foundation.checkpoint.contract import Accept, NewRun

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def recorded(make_tether: Callable[..., Tether]) -> Tether:
    t = make_tether(workflows=["tests.evals.flows"])
    for n in range(50):
        run_id = t.start("ordered", {"n": n})
        assert t.run(run_id).status.value == "completed"
    return t


def test_an_unchanged_workflow_replays_every_run_faithfully(recorded: Tether) -> None:
    before = {r.id: (r.updated_at, len(recorded.journal(r.id))) for r in recorded.list(limit=100)}
    replayed = replay_runs(recorded.settings, LiveRuns(recorded), 50)
    assert len(replayed) == 50 and all(r.ok for r in replayed)
    after = {r.id: (r.updated_at, len(recorded.journal(r.id))) for r in recorded.list(limit=100)}
    assert after == before  # no commit to the recorded database


def test_a_changed_step_order_is_caught_naming_the_step(
    recorded: Tether, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(flows, "SWAPPED", True)
    replayed = replay_runs(recorded.settings, LiveRuns(recorded), 50)
    assert len(replayed) == 50 and not any(r.ok for r in replayed)
    problem = replayed[0].problem or ""
    assert "NonDeterminismError" in problem and "'step double'" in problem
    assert "'step square'" in problem


def test_a_run_no_registered_version_can_resume_is_reported(recorded: Tether) -> None:
    cp = recorded.checkpointer
    cp.create_run(NewRun(id="old-run", workflow="ordered", version="0.9.0", input='{"n": 1}'))
    [claim] = cp.claim("old worker", [Accept(workflow="ordered", version="0.9.0")], 1, 30.0)
    cp.complete("old-run", claim.token, "3")
    [old] = [
        r for r in replay_runs(recorded.settings, LiveRuns(recorded), 100) if r.run.id == "old-run"
    ]
    assert old.problem == "no registered version can resume ordered@0.9.0"


def test_tether_replay_exits_1_when_the_installed_code_would_break_a_recorded_run(
    recorded: Tether, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TETHER_DATA_DIR", str(recorded.settings.data_path))
    monkeypatch.setenv("TETHER_WORKFLOWS", json.dumps(["tests.evals.flows"]))
    monkeypatch.setenv("TETHER_TRACE", "none")

    def replay(*args: str) -> Result:
        return CliRunner().invoke(app, ["replay", *args])

    passed = replay("--last", "50")
    assert passed.exit_code == 0, passed.output
    assert "50 of 50 runs replay faithfully" in passed.output
    monkeypatch.setattr(flows, "SWAPPED", True)
    caught = replay("--last", "5", "--workflow", "ordered")
    assert caught.exit_code == 1 and "0 of 5 runs replay faithfully" in caught.output


@pytest.mark.parametrize(("reorder", "code"), [("0", 0), ("1", 1)])
def test_a_new_version_that_changes_the_step_order_fails_the_replay_gate(
    recorded: Tether, reorder: str, code: int
) -> None:
    """A deploy as it happens: the new version alone installed, resuming the old runs."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TETHER_DATA_DIR": str(recorded.settings.data_path),
        "TETHER_WORKFLOWS": json.dumps(["tests.evals.flows_next"]),  # 1.0.0 is gone
        "TETHER_TRACE": "none",
        "TETHER_TEST_REORDER": reorder,
    }
    replay = subprocess.run(
        [sys.executable, "-m", "tether.cli", "replay", "--last", "50"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert replay.returncode == code, replay.stdout + replay.stderr
    faithful = "0 of 50" if code else "50 of 50"
    assert f"replay: {faithful} runs replay faithfully" in replay.stdout
