"""PostgreSQL restarts while three workers run 200 runs (DBOS users report a restart stranding
workflows: dbos-transact-py#716). The workers reconnect, each saying so in a line or two, and
every run completes with every step executed exactly once, counted by the side-effect file each
run's steps append to."""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.servers import PrivatePostgres
from tests.postgres.test_many_workers_postgres import FLOWS, start_worker, wait_until
from tether import RunStatus, Settings, Tether
from tether.foundation.checkpoint.contract import RunFilter

RUNS, STEPS, WORKERS = 200, 5, 3


@pytest.fixture
def client(private_postgres: PrivatePostgres, tmp_path: Path) -> Iterator[Tether]:
    settings = Settings(
        data_dir=tmp_path / ".tether", workflows=FLOWS, checkpoint="postgres",
        checkpoint_database_url=private_postgres.url, checkpoint_schema="restart",
        trace="memory",
    )  # fmt: skip
    t = Tether(settings)
    yield t
    t.close()


def completed(t: Tether) -> int:
    return len(t.checkpointer.list_runs(RunFilter(statuses=[RunStatus.COMPLETED], limit=RUNS)))


@pytest.mark.slow
def test_a_postgres_restart_mid_run_strands_fails_and_repeats_nothing(
    private_postgres: PrivatePostgres, client: Tether, tmp_path: Path
) -> None:
    t, url = client, private_postgres.url
    logs = tmp_path / "effects"
    logs.mkdir()
    runs = [
        t.start("tally", {"log": str(logs / f"{i}.log"), "steps": STEPS, "pause": 0.005})
        for i in range(RUNS)
    ]
    workers = [start_worker(tmp_path / ".tether", url, "restart", f"w{i}") for i in range(WORKERS)]
    try:
        wait_until(lambda: completed(t) >= RUNS // 5, workers)
        private_postgres.restart()
        wait_until(lambda: completed(t) == RUNS, workers)
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            w.wait(15)
    stderr = [w.stderr.read().decode() if w.stderr else "" for w in workers]
    for i, run_id in enumerate(runs):
        lines = [line.split() for line in (logs / f"{i}.log").read_text().splitlines()]
        executed = Counter(f"{a} {b}" for a, b, _ in lines)
        assert executed == {f"step {s}": 1 for s in range(STEPS)}, (run_id, executed)
        assert t.output(t.status(run_id)) == {"total": sum(range(STEPS))}
    assert not [r for r in t.list(limit=RUNS) if r.status is not RunStatus.COMPLETED]
    for text in stderr:
        assert "Traceback" not in text, text
    print("\n".join(stderr))
