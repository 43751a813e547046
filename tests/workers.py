"""Worker processes for the receipts: start one, SIGKILL it at a chosen moment, or let one
run until a condition holds. Each is a real `tether worker` on the test's data directory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def start_worker(
    data_dir: Path, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TETHER_DATA_DIR": str(data_dir),
        "TETHER_WORKFLOWS": json.dumps(["tests.runtime.flows"]),
        "TETHER_LEASE_SECONDS": "1.0",
        "TETHER_POLL_INTERVAL": "0.05",
        "TETHER_TRACE": "none",
        **(extra_env or {}),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tether.cli", "worker", "--concurrency", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, "timed out"
        time.sleep(0.02)


def kill_worker_when(
    data_dir: Path, ready: Callable[[], bool], extra_env: dict[str, str] | None = None
) -> None:
    """Start a worker and SIGKILL it as soon as `ready()` holds: a crash, not a shutdown."""
    worker = start_worker(data_dir, extra_env)
    try:
        wait_for(ready)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        worker.kill()


def run_worker_until(
    data_dir: Path, done: Callable[[], bool], extra_env: dict[str, str] | None = None
) -> None:
    """Start a worker, wait until `done()` holds, then stop it gracefully."""
    worker = start_worker(data_dir, extra_env)
    try:
        wait_for(done)
    finally:
        worker.terminate()
        worker.wait(10)
