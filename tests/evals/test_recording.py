"""`tether export` writes recorded runs from a SQLite or PostgreSQL checkpointer to one portable
file, and `tether replay --from FILE` gates the installed code on it anywhere: values that lived
in the blob store travel inline, and the committed recording (tests/evals/recorded/, regenerated
by its record.py) is what CI replays, older workflow version included."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import tests.evals.flows as flows
from tether import Settings, Tether
from tether.cli.app import app
from tether.errors import RecordingError
from tether.evals.recording import Recording
from tether.evals.replay import replay_runs
from tether.foundation.tools import local

ROOT = Path(__file__).resolve().parents[2]
RECORDED = ROOT / "tests" / "evals" / "recorded" / "runs.db"
# What CI's agent-eval workflow runs (.github/workflows/agent-eval.yml), word for word
GATE = ["replay", "--from", "tests/evals/recorded/runs.db", "--last", "50"]
GATE_WORKFLOWS = ["workflows.support_triage", "workflows.research_report", "tests.evals.flows_next"]


@pytest.fixture(params=["sqlite", "postgres"])
def recorded(
    request: pytest.FixtureRequest, make_tether: Callable[..., Tether]
) -> Iterator[Tether]:
    """50 finished runs whose every value (inputs, step results) lives in the blob store."""
    options = {"workflows": ["tests.evals.flows"], "blob_threshold": 4}
    if request.param == "sqlite":
        t = make_tether("sqlite", **options)
        yield _fifty(t)
        return
    from tests.postgres.server import fresh_schema

    with fresh_schema("ex") as (url, schema):
        t = make_tether(
            "postgres", **options, checkpoint_database_url=url, checkpoint_schema=schema
        )
        yield _fifty(t)


def _fifty(t: Tether) -> Tether:
    for n in range(50):
        assert t.run(t.start("ordered", {"n": n})).status.value == "completed"
    return t


def _cli(t: Tether, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    s = t.settings
    monkeypatch.setenv("TETHER_DATA_DIR", str(s.data_path))
    monkeypatch.setenv("TETHER_WORKFLOWS", json.dumps(["tests.evals.flows"]))
    monkeypatch.setenv("TETHER_TRACE", "none")
    monkeypatch.setenv("TETHER_CHECKPOINT", s.checkpoint or "sqlite")
    if s.checkpoint == "postgres":
        monkeypatch.setenv("TETHER_CHECKPOINT_DATABASE_URL", str(s.checkpoint_database_url))
        monkeypatch.setenv("TETHER_CHECKPOINT_SCHEMA", str(s.checkpoint_schema))
    return CliRunner().invoke(app, list(args))


def test_exported_runs_replay_from_the_file_alone(
    recorded: Tether, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "recording.db"
    exported = _cli(recorded, monkeypatch, "export", str(file), "--last", "50")
    assert exported.exit_code == 0, exported.output
    assert f"exported 50 runs (100 journal entries, 0 tool calls) to {file}" in exported.output
    assert any((recorded.settings.data_path / "blobs").rglob("*"))  # the source used blobs
    shutil.rmtree(recorded.settings.data_path / "blobs")  # the file must not need them

    with Recording(file) as recording:
        [newest] = recording.runs(1)
        assert newest.input == '{"n":49}' and newest.output is not None
        assert json.loads(newest.output) == 2 * 49 + 49 * 49
        assert [e.name for e in recording.journal(newest.id)] == ["double", "square"]

    passed = _cli(recorded, monkeypatch, "replay", "--from", str(file), "--last", "50")
    assert passed.exit_code == 0, passed.output
    assert "replay: 50 of 50 runs replay faithfully" in passed.output
    monkeypatch.setattr(flows, "SWAPPED", True)
    caught = _cli(recorded, monkeypatch, "replay", "--from", str(file), "--last", "50")
    assert caught.exit_code == 1 and "replay: 0 of 50 runs replay faithfully" in caught.output


def test_export_refuses_to_overwrite_and_replay_refuses_a_file_that_is_no_recording(
    tmp_path: Path,
) -> None:
    taken = tmp_path / "taken.db"
    sqlite3.connect(taken).close()
    with pytest.raises(RecordingError, match=r"taken\.db is not a tether recording"):
        Recording(taken)
    with pytest.raises(RecordingError, match=r"no recording at .*missing\.db; write one with"):
        Recording(tmp_path / "missing.db")


def test_the_committed_recording_holds_50_runs_of_both_agents_and_an_older_version() -> None:
    with Recording(RECORDED) as recording:
        runs = recording.runs(60)
    assert len(runs) >= 50
    kinds = {(r.workflow_id, r.status.value) for r in runs}
    assert ("support_triage@1.1.0", "completed") in kinds
    assert ("support_triage@1.1.0", "waiting") in kinds  # parked on a person's approval
    assert ("research_report@1.0.0", "completed") in kinds
    assert ("ordered@1.0.0", "completed") in kinds  # installed at replay: only ordered@1.1.0


@pytest.mark.parametrize(("reorder", "code", "faithful"), [("0", 0, 50), ("1", 1, 19)])
def test_the_replay_gate_ci_runs_passes_the_installed_code_and_catches_a_reordered_version(
    reorder: str, code: int, faithful: int, tmp_path: Path
) -> None:
    """The command CI runs, on the committed recording: the installed ordered@1.1.0 resumes
    the recorded 1.0.0 runs; a 1.1.0 that swaps two steps fails the 31 among the last 50, and
    only them: the 19 runs of the reference agents still replay."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TETHER_DATA_DIR": str(tmp_path / ".tether"),
        "TETHER_WORKFLOWS": json.dumps(GATE_WORKFLOWS),
        "TETHER_TRACE": "none",
        "TETHER_TEST_REORDER": reorder,
    }
    replay = subprocess.run(
        [sys.executable, "-m", "tether.cli", *GATE], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    print(replay.stdout[-600:])
    assert replay.returncode == code, replay.stdout + replay.stderr
    assert f"replay: {faithful} of 50 runs replay faithfully" in replay.stdout
    if code:
        assert "NonDeterminismError" in replay.stdout and "ordered@1.0.0" in replay.stdout


def test_replaying_the_recording_sends_no_email_and_starts_no_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recorded support tickets each emailed a customer; their replay answers every tool
    call from the journal: no tool lane is built, and no outbox is written."""

    def no_sandbox(*args: object, **kwargs: object) -> None:
        raise AssertionError("the replay gate started a tool lane")

    monkeypatch.setattr(local.LocalLanes, "__init__", no_sandbox)
    settings = Settings(data_dir=tmp_path / ".tether", trace="none",
                        workflows=["workflows.support_triage"])  # fmt: skip
    with Recording(RECORDED) as recording:
        replayed = replay_runs(settings, recording, 50, "support_triage")
        journals = [recording.journal(r.run.id) for r in replayed]
    emailed = [j for j in journals if any(e.name == "email_customer" for e in j)]
    assert len(replayed) == 20 and all(r.ok for r in replayed), [r.problem for r in replayed]
    assert len(emailed) == 18  # the two parked on a person had not emailed yet
    assert not list((tmp_path / ".tether").rglob("sent.log"))
