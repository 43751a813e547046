"""`make chaos`: SIGKILL workers at random while runs execute, then prove from the side-effect
logs that nothing was lost and nothing ran twice.

Starts W worker processes, submits N runs of tests/chaos/flow.py, sends each run's event at a
random moment (before or after it waits), and kills a random worker every 0.5-2 s (starting a
new one) until every run has ended. A run parked as needs_attention (its email was interrupted)
is decided as a person would: `--skip` if the outbox shows the email went out, else `--rerun`.
Then it checks: every run completed; no step ran again after its result was committed; every
step ran; exactly one email per run; every event consumed. Exit 1 on any violation.

`--restart-postgres` runs the PostgreSQL storm on a private cluster of its own
(tests/faults/servers.py) and restarts it once, when a quarter of the runs have completed,
with the same invariants: workers and the driver reconnect, nothing is lost or sent twice.

`--faults pause` freezes a worker instead (SIGSTOP, for 1.25-2 leases, then SIGCONT): a
zombie that wakes after another worker took its runs over, with its steps and tool calls
where the pause caught them. `--faults mixed` does either at random.

`--concurrency N` is how many runs each worker holds at once (default 4); at 16 their steps'
appends share commits (group commit), so a kill lands on commits holding several runs' rows.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

from tether import RunStatus, Settings, Tether

ROOT = Path(__file__).resolve().parents[2]


def worker_env(data_dir: Path, extra: dict[str, str]) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TETHER_DATA_DIR": str(data_dir),
        "TETHER_WORKFLOWS": json.dumps(["tests.chaos.flow"]),
        "TETHER_LEASE_SECONDS": str(LEASE),
        "TETHER_POLL_INTERVAL": "0.1",
        "TETHER_TRACE": "none",
        **extra,
    }


def spawn(env: dict[str, str], concurrency: int = 4) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tether.cli", "worker", "-c", str(concurrency)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


LEASE = 2.0


def storm(
    runs: int,
    workers: int,
    backend_env: dict[str, str],
    timeout: float,
    seed: int,
    restart: Callable[[], None] | None = None,
    faults: str = "kill",
    concurrency: int = 4,
) -> dict[str, int]:
    """`restart`, if given, restarts the database once, when a quarter of the runs completed."""
    rng = random.Random(seed)
    tmp = Path(tempfile.mkdtemp(prefix="tether-chaos-"))
    log, outbox = tmp / "steps.log", tmp / "outbox.log"
    log.touch()
    outbox.touch()
    env = worker_env(tmp / ".tether", backend_env)
    saved = dict(os.environ)
    os.environ.update(backend_env)  # the driver reads the same settings as its workers
    try:
        t = Tether(Settings(data_dir=tmp / ".tether", workflows=["tests.chaos.flow"], trace="none"))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    ids = {
        n: t.start("storm", {"n": n, "log": str(log), "outbox": str(outbox)}) for n in range(runs)
    }
    procs = [spawn(env, concurrency) for _ in range(workers)]
    kills = pauses = decided = restarts = 0
    stop = threading.Event()

    def send_events() -> None:
        for n in rng.sample(range(runs), runs):
            if stop.wait(rng.uniform(0, 4.0 / runs)):
                return
            t.send_event("chaos.go", {"n": n}, run=ids[n])

    sender = threading.Thread(target=send_events, daemon=True)
    sender.start()
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            time.sleep(rng.uniform(0.5, 2.0))
            victim = rng.randrange(len(procs))
            if faults == "pause" or (faults == "mixed" and rng.random() < 0.5):
                # longer than the lease: its runs are taken over while it sleeps
                procs[victim].send_signal(signal.SIGSTOP)
                time.sleep(rng.uniform(1.25 * LEASE, 2 * LEASE))
                procs[victim].send_signal(signal.SIGCONT)
                pauses += 1
            else:
                procs[victim].send_signal(signal.SIGKILL)
                procs[victim].wait()
                kills += 1
                procs[victim] = spawn(env, concurrency)
            decided += decide(t, outbox)
            statuses = Counter(t.status(r).status for r in ids.values())
            if restart is not None and not restarts and statuses[RunStatus.COMPLETED] >= runs / 4:
                restart()
                restarts += 1
            if (
                statuses[RunStatus.COMPLETED]
                + statuses[RunStatus.FAILED]
                + statuses[RunStatus.CANCELLED]
                == runs
            ):
                break
    finally:
        stop.set()
        for p in procs:
            p.send_signal(signal.SIGCONT)  # a stopped worker would not see the SIGTERM
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
    report = verify(t, ids, log, outbox)
    report["kills"], report["pauses"], report["parked for a person"] = kills, pauses, decided
    if restart is not None:
        report["database restarts"] = restarts
    t.close()
    return report


def decide(t: Tether, outbox: Path) -> int:
    """A person's decision on each interrupted email: did it go out? How many were parked."""
    sent = set(outbox.read_text().split())
    parked = t.list(statuses=[RunStatus.NEEDS_ATTENTION], limit=100_000)
    for run in parked:
        n = json.loads(t.codec.resolve(run.input))["n"]
        step = run.failed_step or ""
        if str(n) in sent:
            t.resolve(run.id, step, skip=True)
        else:
            t.resolve(run.id, step, rerun=True)
    return len(parked)


def verify(t: Tether, ids: dict[int, str], log: Path, outbox: Path) -> dict[str, int]:
    executions: dict[tuple[int, str], list[float]] = defaultdict(list)
    for line in log.read_text().splitlines():
        n, name, started = line.split("\t")
        executions[(int(n), name)].append(float(started))
    emails = Counter(int(x) for x in outbox.read_text().split())
    report = Counter[str]()
    failures: dict[str, str] = {}
    for n, run_id in ids.items():
        run = t.status(run_id)
        report["runs"] += 1
        report["completed"] += run.status is RunStatus.COMPLETED
        if run.status is not RunStatus.COMPLETED and "first failure" not in failures:
            failures["first failure"] = f"{run.id} {run.status.value}: {run.error}"
        journal = {e.name: e for e in t.journal(run_id)}
        for i in range(5):
            name = f"step {i}"
            starts = executions[(n, name)]
            entry = journal.get(name)
            report["step executions"] += len(starts)
            if not starts:
                report["steps never run"] += 1
            if entry is not None:
                report["finished steps"] += 1
                # the committed execution began before the commit; any start after it is a
                # finished step running again
                report["finished steps run again"] += sum(s > entry.finished_at for s in starts)
            report["interrupted re-runs"] += max(0, len(starts) - 1)
        report["duplicate emails"] += max(0, emails[n] - 1)
        report["missing emails"] += emails[n] == 0
        report["lost events"] += "go" not in journal
    for why in failures.values():
        print(why)
    return dict(report)


VIOLATIONS = (
    "finished steps run again",
    "steps never run",
    "duplicate emails",
    "missing emails",
    "lost events",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--restart-postgres",
        action="store_true",
        help="PostgreSQL only, on a private cluster restarted once mid-storm",
    )
    parser.add_argument("--faults", choices=["kill", "pause", "mixed"], default="kill")
    parser.add_argument("--concurrency", type=int, default=4, help="runs each worker holds")
    args = parser.parse_args()
    if args.restart_postgres:
        sys.exit(restart_storm(args.runs, args.timeout, args.seed))
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    failed = False
    for backend in backends:
        env, workers = backend_settings(backend)
        if env is None:
            print(f"{backend}: skipped ({workers})")
            continue
        report = storm(
            args.runs,
            int(workers),
            env,
            args.timeout,
            args.seed,
            faults=args.faults,
            concurrency=args.concurrency,
        )
        failed |= judge(
            f"{backend}, {args.faults}, {args.concurrency} runs a worker", workers, report
        )
    sys.exit(1 if failed else 0)


def restart_storm(runs: int, timeout: float, seed: int) -> int:
    """The PostgreSQL storm on a private cluster that is restarted once; the exit code."""
    from tests.faults.servers import PrivatePostgres

    try:
        server = PrivatePostgres()
    except BaseException as e:  # pytest.skip's exception: this host cannot run a private one
        print(f"postgres restart: skipped ({e})")
        return 0
    try:
        env = {
            "TETHER_CHECKPOINT": "postgres",
            "TETHER_CHECKPOINT_DATABASE_URL": server.url,
            "TETHER_CHECKPOINT_SCHEMA": "chaos",
        }
        report = storm(runs, 3, env, timeout, seed, restart=server.restart)
    finally:
        server.close()
    return 1 if judge("postgres, restarted once", 3, report) else 0


def judge(backend: str, workers: int | str, report: dict[str, int]) -> bool:
    """Print the report; True on any violation."""
    bad = {k: report.get(k, 0) for k in VIOLATIONS if report.get(k, 0)}
    bad_runs = report["runs"] - report.get("completed", 0)
    print(
        f"{backend} ({workers} workers): "
        + ", ".join(f"{k}={v}" for k, v in sorted(report.items()))
    )
    if bad or bad_runs:
        print(f"{backend}: VIOLATIONS {bad} runs not completed={bad_runs}")
        return True
    return False


def backend_settings(backend: str) -> tuple[dict[str, str] | None, int | str]:
    if backend == "sqlite":
        return {"TETHER_CHECKPOINT": "sqlite"}, 2
    from tests.postgres.server import _reach

    url, reason = _reach()
    if url is None:
        return None, f"PostgreSQL unreachable: {reason}"
    schema = f"chaos_{random.randrange(16**8):08x}"
    return {
        "TETHER_CHECKPOINT": "postgres",
        "TETHER_CHECKPOINT_DATABASE_URL": url,
        "TETHER_CHECKPOINT_SCHEMA": schema,
    }, 3


if __name__ == "__main__":
    main()
