"""`tether approvals` as an approver meets it: list, show, approve with a token I8 verifies,
a refusal in one line (exit 2) that changes nothing, and the run resumed by the decision."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tether import RunStatus, Settings, Tether

ROOT = Path(__file__).resolve().parents[2]
KEY = "hitl-cli-signing-key-0123456789abcdef0123"

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {
        "PYTHONPATH": str(ROOT),
        "TETHER_DATA_DIR": str(tmp_path / ".tether"),
        "TETHER_WORKFLOWS": json.dumps(["tests.hitl.flows"]),
        "TETHER_POLL_INTERVAL": "0.02",
        "TETHER_TRACE": "none",
        "TETHER_JWT_KEY": KEY,
    }
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return {**os.environ, **values}


@pytest.fixture
def cli(env: dict[str, str], tmp_path: Path) -> Cli:
    def run(*args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
        extra = {"TETHER_TOKEN": token} if token else {}
        return subprocess.run(
            [sys.executable, "-m", "tether.cli", "approvals", *args],
            env={**env, **extra},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run


def test_approve_from_the_cli_resumes_the_run(cli: Cli, env: dict[str, str]) -> None:
    with Tether(Settings()) as t:
        run_id = t.start("deploy_gate", {"version": "3.1"})
        stop = threading.Event()
        t.run(run_id, stop=stop, on_wait=lambda _: stop.set())  # parked on the approval
        ops = t.issue_token("alice", ["ops"])
        sales = t.issue_token("mallory", ["sales"])
        listed = cli("list")
        assert listed.returncode == 0, listed.stderr
        (line,) = listed.stdout.splitlines()
        rid = line.split()[0]
        assert "deploy" in line and "role:ops" in line and run_id in line
        shown = cli("show", rid)
        assert '"version": "3.1"' in shown.stdout and "created by run:" in shown.stdout
        refused = cli("approve", rid, token=sales)
        assert refused.returncode == 2 and "mallory may not decide" in refused.stderr
        forged = cli("approve", rid, token="not-a-token")
        assert forged.returncode == 2
        assert t.approval(rid).state.value == "pending"
        approved = cli("approve", rid, "--reason", "ship it", token=ops)
        assert approved.returncode == 0, approved.stderr
        assert "approved by alice" in approved.stdout
        again = cli("reject", rid, token=ops)
        assert again.returncode == 2 and "already decided: approved by alice" in again.stderr
        run = t.run(run_id)
        assert run.status is RunStatus.COMPLETED
        assert t.output(run)["by"] == "alice"
        assert cli("list").stdout.startswith("no pending")
        as_json = json.loads(cli("list", "--state", "any", "--json").stdout)
        assert [e["event"] for e in as_json[0]["history"]] == ["created", "approved"]


def test_unknown_request_is_one_line(cli: Cli) -> None:
    with Tether(Settings()) as t:
        token = t.issue_token("alice", ["ops"])
    res = cli("approve", "nope", token=token)
    assert res.returncode == 2 and "no approval request 'nope'" in res.stderr
