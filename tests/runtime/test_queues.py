"""Queues across worker processes: the limits are the database's, not a process's. Three real
`tether worker`s (two slots each) share a queue limited to 2 running and 1 per customer; each
run's execution is read back from its journal's timestamps (first step started, last step
finished), a span its lease covers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from tests.runtime.queued_flows import REPORTS
from tests.workers import start_worker, wait_for
from tether import Debounce, Queue, Tether
from tether.errors import ConfigurationError, InvalidInput
from tether.foundation.checkpoint.contract import RunStatus

WORKFLOWS = ["tests.runtime.flows", "tests.runtime.queued_flows"]
ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def backend(
    name: str, make_tether: Callable[..., Tether]
) -> Iterator[tuple[Tether, dict[str, str]]]:
    """A Tether on `name` and the environment that points a worker process at the same data."""
    if name == "sqlite":
        yield make_tether("sqlite", workflows=WORKFLOWS), {"TETHER_CHECKPOINT": "sqlite"}
        return
    from tests.postgres.server import fresh_schema

    with fresh_schema("q") as (url, schema):
        t = make_tether(
            "postgres", workflows=WORKFLOWS, checkpoint_database_url=url, checkpoint_schema=schema
        )
        yield (
            t,
            {
                "TETHER_CHECKPOINT": "postgres",
                "TETHER_CHECKPOINT_DATABASE_URL": url,
                "TETHER_CHECKPOINT_SCHEMA": schema,
            },
        )


def spans(t: Tether, run_ids: list[str]) -> dict[str, tuple[float, float]]:
    out = {}
    for run_id in run_ids:
        journal = t.journal(run_id)
        out[run_id] = (min(e.started_at for e in journal), max(e.finished_at for e in journal))
    return out


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The most intervals that hold at one moment (an end before a start at the same time)."""
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    held = peak = 0
    for _, step in edges:
        held += step
        peak = max(peak, held)
    return peak


@pytest.mark.parametrize("name", ["sqlite", "postgres"])
def test_three_workers_hold_the_queue_to_two_running_and_one_per_key(
    name: str, make_tether: Callable[..., Tether], tmp_path: Path
) -> None:
    with backend(name, make_tether) as (t, env):
        customers = ["acme", "acme", "acme", "beta", "beta", "cyan", "cyan", "dune"]
        waiting = [t.start("report", {"customer": c}) for c in customers]
        urgent = t.start("report", {"customer": "zeta"}, priority=10)
        env = {**env, "TETHER_WORKFLOWS": json.dumps(WORKFLOWS)}
        workers = [start_worker(tmp_path / ".tether", env) for _ in range(3)]
        try:
            everyone = [*waiting, urgent]
            wait_for(lambda: all(t.status(r).status is RunStatus.COMPLETED for r in everyone), 90)
        finally:
            for w in workers:
                w.send_signal(signal.SIGTERM)
            for w in workers:
                w.wait(10)
        ran = spans(t, everyone)
        assert most_at_once(list(ran.values())) == 2  # the limit, reached and never passed
        for customer in set(customers):
            mine = [ran[r] for r, c in zip(waiting, customers, strict=True) if c == customer]
            assert most_at_once(mine) == 1, customer
        began = sorted(ran, key=lambda r: ran[r][0])
        assert began.index(urgent) <= 1  # created last, it began in the first pair


def test_tether_queues_shows_limits_running_waiting_and_the_oldest_wait(
    make_tether: Callable[..., Tether],
) -> None:
    t = make_tether("sqlite", workflows=WORKFLOWS)
    first = t.start("report", {"customer": "acme"})
    t.start("report", {"customer": "acme"})
    t.start("report", {"customer": "beta"})
    claims = t.checkpointer.claim("w", t.registry.accepts(), 5, 30.0, queues=t.registry.queues())
    assert sorted(c.run.queue_key or "" for c in claims) == ["acme", "beta"]
    [(queue, state)] = t.queues()
    assert queue == REPORTS
    assert (state.running, state.waiting) == (2, 1)
    assert state.oldest_wait is not None and state.oldest_wait >= t.status(first).created_at


def test_a_run_takes_its_workflows_queue_and_key_unless_start_says_otherwise(
    make_tether: Callable[..., Tether],
) -> None:
    t = make_tether("sqlite", workflows=WORKFLOWS)
    run = t.status(t.start("report", {"customer": "acme"}))
    assert (run.queue, run.queue_key, run.priority) == ("reports", "acme", 0)
    run = t.status(t.start("report", {"customer": "acme"}, concurrency_key="x", priority=3))
    assert (run.queue, run.queue_key, run.priority) == ("reports", "x", 3)
    bulk = Queue("bulk", concurrency=5)
    run = t.status(t.start("steps", {"n": 1}, queue=bulk))
    assert (run.queue, run.queue_key) == ("bulk", None)
    assert t.status(t.start("steps", {"n": 1}, queue="bulk")).queue == "bulk"


def test_bad_queue_input_is_refused_before_anything_is_written(
    make_tether: Callable[..., Tether],
) -> None:
    t = make_tether("sqlite", workflows=WORKFLOWS)
    with pytest.raises(
        ConfigurationError, match="concurrency must be a whole number of at least 1"
    ):
        Queue("reports", concurrency=0)
    with pytest.raises(ConfigurationError, match="queue 'nope' is not declared"):
        t.start("steps", {"n": 1}, queue="nope")
    with pytest.raises(ConfigurationError, match="declared twice with different limits"):
        t.start("steps", {"n": 1}, queue=Queue("reports", concurrency=3))
    with pytest.raises(InvalidInput, match="give queue= too"):
        t.start("steps", {"n": 1}, priority=2)
    assert t.list() == []


def cli(tmp_path: Path, *args: str, workflows: list[str] = WORKFLOWS) -> CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT}{os.pathsep}{tmp_path}",
        "TETHER_DATA_DIR": str(tmp_path / ".tether"),
        "TETHER_WORKFLOWS": json.dumps(workflows),
        "TETHER_TRACE": "none",
    }
    return subprocess.run(
        [sys.executable, "-m", "tether.cli", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_queues_command_prints_each_queue_as_json(
    make_tether: Callable[..., Tether], tmp_path: Path
) -> None:
    t = make_tether("sqlite", workflows=WORKFLOWS)
    t.start("report", {"customer": "acme"})
    done = cli(tmp_path, "queues", "--json")
    assert done.returncode == 0, done.stderr
    [shown] = json.loads(done.stdout)
    assert {k: shown[k] for k in ("name", "concurrency", "per_key", "running", "waiting")} == {
        "name": "reports",
        "concurrency": 2,
        "per_key": 1,
        "running": 0,
        "waiting": 1,
    }
    assert shown["oldest_wait_seconds"] >= 0


def test_a_queue_limit_below_one_in_a_workflow_module_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "badqueue.py").write_text("from tether import Queue\nQueue('reports', per_key=0)\n")
    done = cli(tmp_path, "queues", workflows=["badqueue"])
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "per_key must be a whole number of at least 1, got 0" in done.stderr


def test_inspect_shows_a_pending_runs_queue_and_when_it_may_start(
    make_tether: Callable[..., Tether], tmp_path: Path
) -> None:
    t = make_tether("sqlite", workflows=WORKFLOWS)
    run_id = t.start(
        "report", {"customer": "acme"}, debounce=Debounce(key="acme", period=600), priority=2
    )
    done = cli(tmp_path, "inspect", run_id)
    assert done.returncode == 0, done.stderr
    assert "queue  reports, key acme, priority 2" in done.stdout
    assert " starts " in done.stdout


def test_tether_run_takes_a_queue_priority_and_debounce(
    make_tether: Callable[..., Tether], tmp_path: Path
) -> None:
    t = make_tether("sqlite", workflows=WORKFLOWS)
    args = ("run", "report", "--input", '{"customer": "acme"}', "--json")
    first = cli(tmp_path, *args, "--priority", "3", "--debounce", "acme=600")
    second = cli(tmp_path, *args, "--priority", "3", "--debounce", "acme=600")
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    run_id = json.loads(first.stdout)["id"]
    assert json.loads(second.stdout)["id"] == run_id  # one run for the burst
    run = t.status(run_id)
    assert (run.queue, run.queue_key, run.priority) == ("reports", "acme", 3)
    for bad, why in [("acme=0", "period must be a number of seconds above 0"),
                     ("acme", "expected KEY=SECONDS")]:  # fmt: skip
        done = cli(tmp_path, *args, "--debounce", bad)
        assert done.returncode == 2 and why in done.stderr and "Traceback" not in done.stderr
    assert len(t.list()) == 1


@pytest.mark.temporal
def test_the_temporal_engine_refuses_a_start_in_a_queue_or_debounced(
    make_tether: Callable[..., Tether], temporal_server: str
) -> None:
    t = make_tether(
        "sqlite",
        workflows=WORKFLOWS,
        engine="temporal",
        temporal_address=temporal_server,
        temporal_queue_prefix=f"t{uuid.uuid4().hex[:12]}",
    )
    with pytest.raises(ConfigurationError, match="the temporal engine does not apply them"):
        t.start("report", {"customer": "acme"})
    with pytest.raises(ConfigurationError, match="the temporal engine does not apply them"):
        t.start("steps", {"n": 1}, debounce=Debounce(key="k", period=5))
    assert t.list() == []
