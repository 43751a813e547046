"""The receipt: kill -9 a worker mid-run; another worker finishes the run and no finished step
runs again. Executions are counted from a side-effect log the steps write, not the journal."""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.workers import kill_worker_when, run_worker_until, start_worker, wait_for
from tether import RunStatus, Tether


def executions(log: Path) -> Counter[str]:
    return Counter(log.read_text().split("\n")[:-1]) if log.exists() else Counter()


def kill_mid_run_and_resume(
    t: Tether, data_dir: Path, log: Path, extra_env: dict[str, str] | None = None
) -> None:
    run_id = t.start("steps", {"n": 8, "pause": 0.15, "log": str(log)})
    kill_worker_when(data_dir, lambda: len(executions(log)) >= 3, extra_env)
    committed = {e.name for e in t.journal(run_id)}
    assert t.status(run_id).status is RunStatus.RUNNING  # its lease is still on the dead worker
    run_worker_until(data_dir, lambda: t.status(run_id).status is RunStatus.COMPLETED, extra_env)
    counts = executions(log)
    assert t.output(t.status(run_id)) == {"total": sum(range(8))}
    assert set(counts) == {f"step {i}" for i in range(8)}
    assert all(counts[name] == 1 for name in committed), counts  # finished: never again
    rerun = [name for name, n in counts.items() if n > 1]
    assert len(rerun) <= 1 and not set(rerun) & committed  # only the interrupted one


def test_kill_minus_9_mid_run_resumes_without_redoing_steps(
    make_tether: Callable[..., Tether],
    tmp_path: Path,
) -> None:
    t = make_tether("sqlite")
    kill_mid_run_and_resume(t, tmp_path / ".tether", tmp_path / "effects.log")


def test_worker_sigterm_releases_its_run_for_another_worker(
    make_tether: Callable[..., Tether],
    tmp_path: Path,
) -> None:
    t = make_tether("sqlite")
    log = tmp_path / "effects.log"
    run_id = t.start("steps", {"n": 6, "pause": 0.1, "log": str(log)})
    first = start_worker(tmp_path / ".tether")
    wait_for(lambda: len(executions(log)) >= 2)
    first.send_signal(signal.SIGTERM)
    assert first.wait(10) == 0
    assert t.status(run_id).status is RunStatus.PENDING  # released, not left to expire
    run_worker_until(tmp_path / ".tether", lambda: t.status(run_id).status is RunStatus.COMPLETED)
    assert all(n == 1 for n in executions(log).values())  # graceful: nothing ran twice


def test_a_worker_that_cannot_renew_its_lease_starts_no_step_once_it_may_have_lapsed(
    make_tether: Callable[..., Tether],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its heartbeats stall (a frozen process wakes the same way): past 0.8 of the lease it
    starts no new step, since another worker may hold the run and have committed that very
    step; it drops the run, which is claimed again and finishes, every step run once."""
    t = make_tether("sqlite")
    log = tmp_path / "effects.log"
    stall = lambda run_id, token, lease_seconds: time.sleep(2.5) or True  # noqa: E731
    monkeypatch.setattr(t.services.checkpointer, "heartbeat", stall)
    run_id = t.start("steps", {"n": 3, "pause": 0.5, "log": str(log)})
    run = t.run(run_id)  # steps 0 and 1 by 1.0 s, past the first claim's 0.8 s
    assert run.status is RunStatus.COMPLETED
    assert executions(log) == Counter({"step 0": 1, "step 1": 1, "step 2": 1})
    assert run.claims == 2  # step 2 waited for a claim of its own
