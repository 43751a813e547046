"""The receipt: kill -9 a worker mid-run; another worker finishes the run and no finished step
runs again. Executions are counted from a side-effect log the steps write, not the journal."""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path

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
