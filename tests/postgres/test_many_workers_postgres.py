"""The scale-out receipt: 200 runs of 5 steps executed by 3 worker processes sharing one
PostgreSQL database. Every run completes and every step executes exactly once, counted by the
side-effect file each run's steps append to, not by the journal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from tests.postgres.server import fresh_schema
from tether import RunStatus, Settings, Tether
from tether.foundation.checkpoint.contract import RunFilter

ROOT = Path(__file__).resolve().parents[2]
RUNS, STEPS, WORKERS = 200, 5, 3
FLOWS = ["tests.postgres.flows"]


def start_worker(data_dir: Path, url: str, schema: str, name: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TETHER_DATA_DIR": str(data_dir),
        "TETHER_WORKFLOWS": json.dumps(FLOWS),
        "TETHER_CHECKPOINT": "postgres",
        "TETHER_CHECKPOINT_DATABASE_URL": f"{url}?application_name={name}",
        "TETHER_CHECKPOINT_SCHEMA": schema,
        "TETHER_LEASE_SECONDS": "2.0",
        "TETHER_POLL_INTERVAL": "0.2",
        "TETHER_TRACE": "none",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tether.cli", "worker", "--concurrency", "4"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


def wait_until(predicate: Callable[[], bool], workers: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 90
    while not predicate():
        dead = [w.stderr.read().decode() for w in workers if w.poll() is not None and w.stderr]
        assert not dead, f"a worker exited: {dead}"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.fixture
def shared_db(tmp_path: Path) -> Iterator[tuple[Tether, str, str]]:
    with fresh_schema("scale") as (url, schema):
        settings = Settings(
            data_dir=tmp_path / ".tether", workflows=FLOWS, checkpoint="postgres",
            checkpoint_database_url=url, checkpoint_schema=schema, trace="memory",
        )  # fmt: skip
        t = Tether(settings)
        yield t, url, schema
        t.close()


@pytest.mark.postgres
@pytest.mark.slow
def test_three_workers_execute_every_step_of_200_runs_exactly_once(
    shared_db: tuple[Tether, str, str], tmp_path: Path
) -> None:
    t, url, schema = shared_db
    names = [f"tether-{schema}-{i}" for i in range(WORKERS)]
    workers = [start_worker(tmp_path / ".tether", url, schema, n) for n in names]
    logs = tmp_path / "effects"
    logs.mkdir()
    try:
        with psycopg.connect(url, autocommit=True) as admin:
            connected = (
                "SELECT count(DISTINCT application_name) FROM pg_stat_activity "
                "WHERE application_name = ANY(%s)"
            )

            def all_connected() -> bool:
                row = admin.execute(connected, (names,)).fetchone()
                return row is not None and row[0] == WORKERS

            wait_until(all_connected, workers)
        runs = [
            t.start("tally", {"log": str(logs / f"{i}.log"), "steps": STEPS, "pause": 0.002})
            for i in range(RUNS)
        ]
        done = RunFilter(statuses=[RunStatus.COMPLETED], limit=RUNS)
        wait_until(lambda: len(t.checkpointer.list_runs(done)) == RUNS, workers)
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            w.wait(15)
    pids: Counter[str] = Counter()
    for i, run_id in enumerate(runs):
        lines = [line.split() for line in (logs / f"{i}.log").read_text().splitlines()]
        executed = Counter(f"{a} {b}" for a, b, _ in lines)
        assert executed == {f"step {s}": 1 for s in range(STEPS)}, (run_id, executed)
        assert t.output(t.status(run_id)) == {"total": sum(range(STEPS))}
        pids.update(pid for *_, pid in lines)
    assert len(pids) == WORKERS, f"steps per worker process: {dict(pids)}"
