"""PostgreSQL unreachable when the workers start and again for a while mid-run (30 s in the
issue; TETHER_FAULT_OUTAGE_SECONDS, default 6, here): `tether run` says so in one line and exits
2, the workers wait and retry, and once the server is back every run completes, none fails.

The outage outlasts the 2 s lease (leases expire by the database's clock), so a step whose
commit the outage interrupted may run again under the worker that claims its run next: at
least once, as DESIGN promises for an interrupted commit. So every step ran, and only the
steps in flight when the server went (at most one per worker slot) ran twice. A restart shorter
than the lease repeats nothing (test_postgres_restart.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.faults.servers import PrivatePostgres
from tests.postgres.test_many_workers_postgres import FLOWS, ROOT, wait_until
from tether import RunStatus, Settings, Tether
from tether.foundation.checkpoint.contract import RunFilter

RUNS, STEPS, WORKERS, SLOTS = 60, 5, 3, 4
OUTAGE = float(os.environ.get("TETHER_FAULT_OUTAGE_SECONDS", "6"))


def start_worker(data_dir: Path, url: str, log: Path) -> subprocess.Popen[bytes]:
    """A `tether worker` on the outage schema whose stderr goes to `log`, to be read while it
    runs."""
    env = {
        **os.environ, "PYTHONPATH": str(ROOT), "TETHER_DATA_DIR": str(data_dir),
        "TETHER_WORKFLOWS": '["tests.postgres.flows"]', "TETHER_CHECKPOINT": "postgres",
        "TETHER_CHECKPOINT_DATABASE_URL": url, "TETHER_CHECKPOINT_SCHEMA": "outage",
        "TETHER_LEASE_SECONDS": "2.0", "TETHER_POLL_INTERVAL": "0.2", "TETHER_TRACE": "none",
    }  # fmt: skip
    with open(log, "wb") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "tether.cli", "worker", "--concurrency", str(SLOTS)],
            env=env, stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip


def tether_run(url: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ, "PYTHONPATH": str(ROOT), "TETHER_DATA_DIR": str(data_dir),
        "TETHER_WORKFLOWS": '["tests.postgres.flows"]', "TETHER_CHECKPOINT": "postgres",
        "TETHER_CHECKPOINT_DATABASE_URL": url, "TETHER_CHECKPOINT_SCHEMA": "outage",
        "TETHER_TRACE": "none",
    }  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "tether.cli", "run", "tally", "--input", '{"log": "/dev/null"}'],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.slow
def test_workers_wait_for_a_postgres_that_is_down_at_start_and_again_mid_run(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    url, data_dir = private_postgres.url, tmp_path / ".tether"
    private_postgres.stop()
    refused = tether_run(url, data_dir)
    assert refused.returncode == 2
    [line] = [x for x in refused.stderr.splitlines() if "error" in x]
    assert f"PostgreSQL at {url} is unavailable" in line, refused.stderr
    logs = [tmp_path / f"worker-{i}.log" for i in range(WORKERS)]
    workers = [start_worker(data_dir, url, log) for log in logs]
    settings = Settings(
        data_dir=data_dir, workflows=FLOWS, checkpoint="postgres", checkpoint_database_url=url,
        checkpoint_schema="outage", trace="memory",
    )  # fmt: skip
    effects = tmp_path / "effects"
    effects.mkdir()
    try:
        wait_until(lambda: all("trying again in" in log.read_text() for log in logs), workers)
        time.sleep(1)
        assert all(w.poll() is None for w in workers), "a worker gave up on a database at start"
        private_postgres.start()
        t = Tether(settings)
        runs = [
            t.start("tally", {"log": str(effects / f"{i}.log"), "steps": STEPS, "pause": 0.01})
            for i in range(RUNS)
        ]
        done = RunFilter(statuses=[RunStatus.COMPLETED], limit=RUNS)
        wait_until(lambda: len(t.checkpointer.list_runs(done)) >= RUNS // 4, workers)
        private_postgres.stop()
        time.sleep(OUTAGE)
        private_postgres.start()
        wait_until(lambda: len(t.checkpointer.list_runs(done)) == RUNS, workers)
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            w.wait(15)
    stderr = [log.read_text() for log in logs]
    again = 0
    for i, run_id in enumerate(runs):
        lines = [line.split() for line in (effects / f"{i}.log").read_text().splitlines()]
        executed = Counter(f"{a} {b}" for a, b, _ in lines)
        assert set(executed) == {f"step {s}" for s in range(STEPS)}, (run_id, executed)
        assert max(executed.values()) <= 2, (run_id, executed)
        again += sum(executed.values()) - STEPS
        assert t.output(t.status(run_id)) == {"total": sum(range(STEPS))}
    assert again <= WORKERS * SLOTS, f"{again} steps ran twice"
    assert all(r.status is RunStatus.COMPLETED for r in t.list(limit=RUNS))
    for text in stderr:
        assert "Traceback" not in text, text
        assert text.count("reconnecting with backoff") <= 1, text  # one line for the outage
    assert any("answers again after" in text for text in stderr)  # waited through it
    t.close()
    print("\n".join(stderr))
