"""The CLI as a user meets it: exit codes, one-line errors, the database named every time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli(tmp_path: Path):  # type: ignore[no-untyped-def]
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TETHER_DATA_DIR": str(tmp_path / ".tether"),
        "TETHER_WORKFLOWS": json.dumps(
            ["tests.runtime.flows", "workflows.research_report", "workflows.support_triage"]
        ),
        "TETHER_POLL_INTERVAL": "0.02",
        "TETHER_TRACE": "none",
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tether.cli", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run


def test_run_wait_exits_0_on_completed_with_progress_and_next_step(cli) -> None:  # type: ignore[no-untyped-def]
    done = cli("run", "steps", "--input", '{"n": 2}', "--wait")
    assert done.returncode == 0, done.stderr
    assert "step 0" in done.stdout and "step 1" in done.stdout
    assert "completed" in done.stdout and "tether inspect" in done.stdout
    assert "database: sqlite:///" in done.stderr


def test_run_wait_exits_1_on_failed(cli) -> None:  # type: ignore[no-untyped-def]
    failed = cli("run", "flaky", "--input", '{"key": "k", "failures": 0, "fatal": true}', "--wait")
    assert failed.returncode == 1
    assert "failed" in failed.stdout


def test_bad_input_is_one_line_and_exit_2(cli) -> None:  # type: ignore[no-untyped-def]
    bad = cli("run", "steps", "--input", '{"n": "lots"}', "--wait")
    assert bad.returncode == 2
    errors = [line for line in bad.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "n" in errors[0]
    assert "Traceback" not in bad.stderr
    malformed = cli("run", "steps", "--input", "{not json")
    assert malformed.returncode == 2 and "not valid JSON" in malformed.stderr


def test_unknown_workflow_and_run_name_the_problem(cli) -> None:  # type: ignore[no-untyped-def]
    unknown = cli("run", "nope")
    assert unknown.returncode == 2 and "nope" in unknown.stderr and "steps@1.0.0" in unknown.stderr
    missing = cli("inspect", "no-such-run")
    assert missing.returncode == 2 and "no-such-run" in missing.stderr


def test_start_list_inspect_cancel_round_trip(cli) -> None:  # type: ignore[no-untyped-def]
    started = cli("run", "approval", "--input", '{"ticket": "T-1"}', "--json")
    run_id = json.loads(started.stdout)["id"]
    listed = json.loads(cli("runs", "--json").stdout)
    assert [r["id"] for r in listed] == [run_id]
    assert cli("cancel", run_id).returncode == 0
    view = json.loads(cli("inspect", run_id, "--json").stdout)
    assert view["run"]["status"] == "cancelled"


def test_event_sent_before_the_worker_runs_is_held_for_the_run(cli) -> None:  # type: ignore[no-untyped-def]
    started = cli("run", "approval", "--input", '{"ticket": "T-2"}', "--json")
    run_id = json.loads(started.stdout)["id"]
    sent = cli("send-event", "approved", "--data", '{"ticket": "T-2", "by": "ana"}')
    assert sent.returncode == 0 and "held" in sent.stdout  # not waiting yet: held for it
    assert cli("worker", "--until-idle").returncode == 0
    view = json.loads(cli("inspect", run_id, "--json").stdout)
    assert view["run"]["status"] == "completed"
    assert json.loads(view["run"]["output"]) == {"answer": {"ticket": "T-2", "by": "ana"}}


def test_demo_workflow_completes_offline(cli) -> None:  # type: ignore[no-untyped-def]
    demo = cli(
        "run",
        "research_report",
        "--input",
        '{"topic": "durable agents", "review_pause_seconds": 0.1}',
        "--wait",
        "--json",
    )
    assert demo.returncode == 0, demo.stderr
    report = json.loads(demo.stdout)["output"]
    assert len(report["findings"]) == 3
    assert all(f["sources"] and f["answer"] for f in report["findings"])
    assert Path(report["saved_to"]).read_text().startswith("# durable agents")


def test_prune_reports_what_it_freed(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("run", "steps", "--input", '{"n": 1}', "--wait").returncode == 0
    kept = cli("prune", "--finished-before", "2000-01-01")
    assert kept.returncode == 0 and "pruned 0 runs" in kept.stdout
    gone = cli("prune", "--finished-before", "2999-01-01")
    assert gone.returncode == 0 and "pruned 1 runs" in gone.stdout
    assert json.loads(cli("runs", "--json").stdout) == []


def test_cancel_of_an_unknown_run_names_it(cli) -> None:  # type: ignore[no-untyped-def]
    missing = cli("cancel", "no-such-run")
    assert missing.returncode == 2 and "no-such-run" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_unwritable_data_directory_is_one_line(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    blocked = tmp_path / ".tether"
    blocked.write_text("a file where the data directory should be")
    result = cli("runs")
    assert result.returncode == 2
    assert "data directory" in result.stderr and "TETHER_DATA_DIR" in result.stderr
    assert blocked.read_text().startswith("a file")  # nothing overwritten


def test_corrupt_database_file_is_one_line_and_left_alone(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / ".tether"
    data.mkdir()
    (data / "tether.db").write_bytes(b"this is not a database" * 100)
    result = cli("runs")
    assert result.returncode == 2 and "corrupt" in result.stderr
    assert "Traceback" not in result.stderr
    assert (data / "tether.db").read_bytes().startswith(b"this is not a database")


def test_locked_database_is_one_line(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    assert cli("runs").returncode == 0  # creates the database
    holder = sqlite3.connect(tmp_path / ".tether" / "tether.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        env_timeout = cli("run", "steps", "--input", '{"n": 1}')
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert env_timeout.returncode == 2 and "locked" in env_timeout.stderr


def test_tail_prints_a_runs_stream_from_the_start_or_an_offset(cli) -> None:  # type: ignore[no-untyped-def]
    done = cli("run", "streamer", "--input", '{"n": 3}', "--wait")
    assert done.returncode == 0, done.stderr
    run_id = next(w for w in done.stdout.split() if len(w) >= 16 and w.isalnum())
    tail = cli("tail", run_id)
    assert tail.returncode == 0, tail.stderr
    assert tail.stdout.splitlines() == ['0 {"i":0}', '1 {"i":1}', '2 {"i":2}']
    later = cli("tail", run_id, "--key", "progress", "--offset", "2", "--json")
    assert [json.loads(line) for line in later.stdout.splitlines()] == [
        {"offset": 2, "attempt": 1, "value": {"i": 2}}
    ]
    assert cli("tail", "no-such-run").returncode == 2


def test_fork_starts_a_run_from_a_step_and_refuses_one_never_reached(cli) -> None:  # type: ignore[no-untyped-def]
    done = cli("run", "steps", "--input", '{"n": 3}', "--wait")
    assert done.returncode == 0, done.stderr
    run_id = next(w for w in done.stdout.split() if len(w) >= 16 and w.isalnum())
    forked = cli("fork", run_id, "--from-step", "2")
    assert forked.returncode == 0, forked.stderr
    assert "keeps 1 entries" in forked.stdout and f"forked from {run_id} at 2" in forked.stdout
    assert cli("fork", run_id, "--from-step", "9").returncode == 2
