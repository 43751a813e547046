"""A run parked under 1.0.0 is resumed by a worker that has only 1.1.0 (`resumes=["1.0.*"]`),
and stays stranded, listed and untouched, under a worker that has only 2.0.0."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.workers import ROOT, run_worker_until, start_worker
from tether import RunStatus, Settings, Tether


def cli(data_dir: Path, module: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PYTHONPATH": str(ROOT),
        "TETHER_DATA_DIR": str(data_dir),
        "TETHER_WORKFLOWS": json.dumps([module]),
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run(
        [sys.executable, "-m", "tether.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_parked_run_is_resumed_by_the_version_that_declares_it_and_stranded_otherwise(
    tmp_path: Path,
) -> None:
    data = tmp_path / ".tether"
    t = Tether(
        Settings(data_dir=data, workflows=["tests.upgrades.v1"], poll_interval=0.02, trace="none")
    )
    run_id = t.start("ticket", {"ticket": "T-1"})
    stop = threading.Event()
    t.run(run_id, stop=stop, on_wait=lambda _run: stop.set())
    assert t.status(run_id).status is RunStatus.WAITING
    t.send_event("ticket.approved", {"ticket": "T-1", "by": "ana"})  # ready to run again
    t.close()

    only_v2 = {"TETHER_WORKFLOWS": json.dumps(["tests.upgrades.v2"])}
    worker = start_worker(data, only_v2)
    try:
        time.sleep(1.0)  # ample polls for a worker that would (wrongly) take it
        listed = cli(data, "tests.upgrades.v2", "runs", "--stranded", "--json")
    finally:
        worker.terminate()
        worker.wait(10)
    assert [r["id"] for r in json.loads(listed.stdout)] == [run_id]
    t = Tether(Settings(data_dir=data, workflows=["tests.upgrades.v1"], trace="none"))
    assert t.status(run_id).status is RunStatus.PENDING and t.status(run_id).claims == 1

    only_v11 = {"TETHER_WORKFLOWS": json.dumps(["tests.upgrades.v11"])}
    run_worker_until(data, lambda: t.status(run_id).status is RunStatus.COMPLETED, only_v11)
    run = t.status(run_id)
    assert run.workflow_id == "ticket@1.0.0"  # still pinned to the version it started on
    assert t.output(run) == {"ticket": "T-1", "answered_by": "1.1.0", "approved_by": "ana"}
    t.close()
