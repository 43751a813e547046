"""tether, as a user runs it: `Tether(Settings(...))`, `start`, then `run` inline or workers.

Configuration is tether's default (SQLite in WAL with `synchronous=FULL`, JSONL traces) apart
from the poll interval, set to 50 ms as in tether's own tests; the report states it. The
`phoenix` option exports the spans to a live Phoenix instead; a sample counts only once
Phoenix has taken every span.
PostgreSQL runs only when the `tether.checkpoint` entry point `postgres` loads (the harness
checks before it schedules anything).
"""

from __future__ import annotations

import functools
import time
from typing import Any

from bench import tether_wf
from bench.env import Env
from bench.measure import Sample, Stamps, Timer, cpu_seconds, current_rss_kb, peak_rss_kb
from bench.processes import Background, run_once, run_pool

POLL_INTERVAL = 0.05


def _settings_kw(env: Env, **over: Any) -> dict[str, Any]:
    kw: dict[str, Any] = {
        "workflows": ["bench.tether_wf"],
        "data_dir": str(env.dir / "tether"),
        "poll_interval": POLL_INTERVAL,
        "sqlite_synchronous": env.sqlite_synchronous,
    }
    if env.backend == "postgres":
        kw.update(checkpoint="postgres", database_url=env.fresh_postgres())
    if env.option == "phoenix":
        kw.update(trace="phoenix", phoenix_endpoint=env.phoenix_url, phoenix_project="bench")
    kw.update(over)
    return kw


def _tether(kw: dict[str, Any]) -> Any:
    from tether import Settings, Tether

    return Tether(Settings(**kw))


def _step_entries(t: Any, run_id: str, kind: str = "step") -> int:
    return sum(1 for e in t.journal(run_id) if e.kind == kind and e.status == "ok")


def _one_run(env: Env, p: dict[str, Any], workflow: str) -> Sample:
    t = _tether(_settings_kw(env))
    with Timer() as timer:
        run_id = t.start(workflow, {"n": p["n"]})
        run = t.run(run_id)
    cpu_s = timer.cpu_s
    if env.option == "phoenix":
        # The run's wall time is with its spans exported beside it, by the outbox's thread;
        # what that thread still had to convert and send when the run ended is CPU the run
        # caused, so it is added (waiting for Phoenix's answer is not).
        cpu0 = cpu_seconds()
        if not t.sink.drain(120):
            raise RuntimeError(f"Phoenix at {env.phoenix_url} did not take the spans")
        cpu_s += cpu_seconds() - cpu0
    observed = {
        "status": run.status.value,
        "total": t.output(run),
        "journaled": _step_entries(t, run_id),
        "executed": tether_wf.EXECUTED,
    }
    t.close()
    return Sample(timer.wall_s, cpu_s, p["n"], observed)


def seq(env: Env, p: dict[str, Any]) -> Sample:
    return _one_run(env, p, "bench_seq")


def fanout(env: Env, p: dict[str, Any]) -> Sample:
    return _one_run(env, p, "bench_fanout")


def stream(env: Env, p: dict[str, Any]) -> Sample:
    """n stream appends in one run, between two runs of n steps of the seq shape on the same
    database (so neither goes first on warm caches): the sample is the appends' wall time;
    the steps' mean rides along for the ratio."""
    t = _tether(_settings_kw(env))
    step_run = t.run(t.start("bench_seq", {"n": p["n"]}))  # warms the process and database
    step_walls: list[float] = []
    with Timer() as steps_timer:
        t.run(t.start("bench_seq", {"n": p["n"]}))
    step_walls.append(steps_timer.wall_s)
    with Timer() as timer:
        run_id = t.start("bench_stream", {"n": p["n"]})
        run = t.run(run_id)
    with Timer() as steps_timer:
        t.run(t.start("bench_seq", {"n": p["n"]}))
    step_walls.append(steps_timer.wall_s)
    observed = {
        "status": run.status.value,
        "total": t.output(run),
        "step_total": t.output(step_run),
        "journaled": _step_entries(t, run_id, kind="stream"),
        "streamed": len(list(t.stream(run_id, "progress", follow=False))),
    }
    t.close()
    extra = {"step_wall_s": sum(step_walls) / len(step_walls), "step_walls_s": step_walls}
    return Sample(timer.wall_s, timer.cpu_s, p["n"], observed, extra=extra)


def _time_lane(t: Any, into: list[float]) -> None:
    """Time the ephemeral lane's own part of each call (the process), apart from what the
    runtime records around it (intent and result rows, guard audits, the journal)."""
    from tether.foundation.tools.contract import PersistenceClass

    lane = t.foundations.tools.lanes.lane(PersistenceClass.EPHEMERAL)
    run = lane.run

    async def timed(invocation: Any) -> Any:
        started = time.perf_counter()
        try:
            return await run(invocation)
        finally:
            into.append(time.perf_counter() - started)

    lane.run = timed


def tool(env: Env, p: dict[str, Any]) -> Sample:
    """A pure tool called n times on one lane, after the same function as n plain steps: each
    call timed inside the workflow, so the harness can take the tool's first call (the lane's
    cold start) apart from the rest and the steps' cost off the tools'."""
    t = _tether(_settings_kw(env, tools=p["lane"]))
    lane_s: list[float] = []
    _time_lane(t, lane_s)
    step_run = t.run(t.start("bench_add_steps", {"n": p["n"]}))
    step_s, tether_wf.CALL_S = tether_wf.CALL_S, []
    with Timer() as timer:
        run_id = t.start("bench_add_tools", {"n": p["n"]})
        run = t.run(run_id)
    observed = {
        "status": run.status.value,
        "total": t.output(run),
        "step_total": t.output(step_run),
        "journaled": _step_entries(t, run_id, kind="tool"),
    }
    t.close()
    extra = {"tool_s": tether_wf.CALL_S, "step_s": step_s, "lane_s": lane_s, "lane": p["lane"]}
    return Sample(timer.wall_s, timer.cpu_s, p["n"], observed, extra=extra)


def agent(env: Env, p: dict[str, Any]) -> Sample:
    """`runs` agents of `turns` turns one after another, each run inline as `seq` is, after
    one untimed agent (the tool lane's cold start is the `tool` workload's first call); the
    model is the `scripted` backend, the tool runs on the default lane."""
    turns, runs = p["turns"], p["runs"]
    replies = [str(i) for _ in range(runs + 1) for i in range(turns)]
    t = _tether(
        _settings_kw(
            env,
            model_backends={"scripted": {"replies": replies}},
            model_routes={"bench": [{"backend": "scripted", "model": "s-1", "family": "bench"}]},
        )
    )
    warm = t.start("bench_agent", {"turns": turns})
    t.run(warm)
    total = calls = 0
    with Timer() as timer:
        for _ in range(runs):
            run_id = t.start("bench_agent", {"turns": turns})
            run = t.run(run_id)
            total += t.output(run) if run.status.value == "completed" else 0
    for r in t.list(limit=runs + 1):
        if r.id == warm:
            continue
        calls += sum(1 for e in t.journal(r.id) if e.kind in ("model", "tool") and e.status == "ok")
    t.close()
    return Sample(timer.wall_s, timer.cpu_s, runs * turns, {"total": total, "calls": calls})


# -- many runs, several worker processes ---------------------------------------------------


def _worker_prepare(kw: dict[str, Any], index: int, count: int) -> Any:
    return _tether(kw)


def _worker_work(concurrency: int, t: Any) -> dict[str, int]:
    t.worker(concurrency=concurrency).run(until_idle=True)
    return {"executed": tether_wf.EXECUTED}


def batch(env: Env, p: dict[str, Any]) -> Sample:
    """Workers holding `concurrency` runs each, whose appends share commits."""
    from tether import RunStatus

    kw = _settings_kw(env)
    t = _tether(kw)

    def kick() -> None:
        for i in range(p["runs"]):
            t.start("bench_seq", {"n": p["steps"]}, key=f"batch-{i}")

    work = functools.partial(_worker_work, p["concurrency"])
    pool = run_pool(functools.partial(_worker_prepare, kw), work, p["workers"], kick)
    done = t.list(statuses=[RunStatus.COMPLETED], limit=1_000_000)
    want = p["steps"] * (p["steps"] + 1) // 2
    observed = {
        "completed": len(done),
        "correct": sum(1 for r in done if t.output(r) == want),
        "journaled": sum(_step_entries(t, r.id) for r in done),
        **pool.facts,
    }
    t.close()
    return Sample(pool.wall_s, pool.cpu_s, p["runs"], observed, pool.peak_rss_kb)


concurrency = batch


def queue(env: Env, p: dict[str, Any]) -> Sample:
    """The batch three times on one database: runs in no queue, runs in a limited queue (each
    claim counts the queue's leases under its lock), runs in no queue again, so the queued
    batch neither goes first nor last. The sample is the queued batch; the plain batches' mean
    wall time rides along for the ratio."""
    from tether import RunStatus

    kw = _settings_kw(env)
    t = _tether(kw)
    walls: list[tuple[str, Any]] = []
    for n, workflow in enumerate(("bench_seq", "bench_seq_queued", "bench_seq")):

        def kick(workflow: str = workflow, n: int = n) -> None:
            for i in range(p["runs"]):
                t.start(workflow, {"n": p["steps"]}, key=f"{n}-{i}")

        pool = run_pool(functools.partial(_worker_prepare, kw), _worker_work, p["workers"], kick)
        walls.append((workflow, pool))
    queued = walls[1][1]
    plain = [pool.wall_s for workflow, pool in walls if workflow == "bench_seq"]
    done = t.list(statuses=[RunStatus.COMPLETED], workflow="bench_seq_queued", limit=1_000_000)
    want = p["steps"] * (p["steps"] + 1) // 2
    observed = {
        "completed": len(done),
        "correct": sum(1 for r in done if t.output(r) == want),
        "queued": sum(1 for r in done if r.queue == "bench"),
    }
    t.close()
    extra = {"plain_wall_s": sum(plain) / len(plain), "plain_walls_s": plain}
    return Sample(queued.wall_s, queued.cpu_s, p["runs"], observed, queued.peak_rss_kb, extra=extra)


# -- event latency ---------------------------------------------------------------------------


def _serve(arg: tuple[dict[str, Any], str], ready: Any) -> None:
    kw, stamps = arg
    tether_wf.STAMPS = Stamps(stamps)  # type: ignore[arg-type]
    worker = _tether(kw).worker(concurrency=1)
    ready.set()
    worker.run()


def _until(predicate: Any, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout:.0f}s")
        time.sleep(0.002)


def _parked(t: Any, run_id: str, stamps: Stamps, stamped: int) -> bool:
    return bool(t.status(run_id).status.value == "waiting" and len(stamps.read()) == stamped)


def event(env: Env, p: dict[str, Any]) -> Sample:
    from pathlib import Path

    kw = _settings_kw(env)
    t = _tether(kw)
    stamps = Stamps(env.dir / "stamps.txt")
    latencies: list[float] = []
    with Background(_serve, (kw, str(stamps.path))):
        run_id = t.start("bench_event", {"events": p["events"]})
        for i in range(p["events"]):
            _until(functools.partial(_parked, t, run_id, stamps, i), what=f"parked on wait {i}")
            sent = time.time()
            t.send_event("bench_ev", {"i": i})
            latencies.append(stamps.wait_for(i) - sent)
        _until(lambda: t.status(run_id).status.value == "completed", what="run completed")
    run = t.status(run_id)
    observed = {"delivered": t.output(run) if run.status.value == "completed" else 0}
    Path(stamps.path).unlink()
    t.close()
    return Sample(
        sum(latencies),
        0.0,
        len(latencies),
        observed,
        extra={"latencies_s": latencies, "poll_interval_s": POLL_INTERVAL},
    )


# -- start latency ---------------------------------------------------------------------------


def start(env: Env, p: dict[str, Any]) -> Sample:
    """From `Tether.start` returning to the run's first step executing in an idle worker that
    is already running (it wakes on the database's change signal, not its poll interval)."""
    import random
    from pathlib import Path

    from tether import RunStatus

    kw = _settings_kw(env)
    t = _tether(kw)
    stamps = Stamps(env.dir / "stamps.txt")
    latencies: list[float] = []
    with Background(_serve, (kw, str(stamps.path))):
        for i in range(p["starts"]):
            time.sleep(random.uniform(0.05, 0.1))  # idle again, at no fixed phase of any poll
            t.start("bench_started", {"n": i})
            returned = time.time()
            latencies.append(stamps.wait_for(i) - returned)
        _until(
            lambda: len(t.list(statuses=[RunStatus.COMPLETED], limit=p["starts"])) == p["starts"],
            what="runs completed",
        )
    observed = {"started": len(stamps.read())}
    Path(stamps.path).unlink()
    t.close()
    return Sample(sum(latencies), 0.0, len(latencies), observed, extra={"latencies_s": latencies})


# -- resume after a kill ---------------------------------------------------------------------


def _crash(arg: tuple[dict[str, Any], str]) -> None:
    kw, run_id = arg
    tether_wf.CRASH_AT_MARKER = True
    _tether(kw).run(run_id)


def resume(env: Env, p: dict[str, Any]) -> Sample:
    kw = _settings_kw(env, lease_seconds=1.0)
    t = _tether(kw)
    run_id = t.start("bench_resume", {"n": p["n"]})
    code = run_once(_crash, (kw, run_id))
    if code != -9:
        raise RuntimeError(f"the run was not killed mid-step (exit {code})")
    # The lease must lapse before anyone may claim the run; that wait is a setting, not a cost.
    _until(
        lambda: (t.status(run_id).lease_expires_at or 0) < time.time() - 0.05, what="lease expiry"
    )
    stamps = Stamps(env.dir / "stamps.txt")
    tether_wf.STAMPS = stamps
    cpu0 = cpu_seconds()
    sent = time.time()
    run = t.run(run_id)
    cpu = cpu_seconds() - cpu0
    reached = stamps.wait_for(p["n"])
    observed = {
        "status": run.status.value,
        "total": t.output(run),
        "journaled": _step_entries(t, run_id),
        "reexecuted": tether_wf.EXECUTED,
    }
    t.close()
    return Sample(reached - sent, cpu, 1, observed)


# -- memory with parked runs -----------------------------------------------------------------


def memory(env: Env, p: dict[str, Any]) -> Sample:
    from tether import RunStatus

    t = _tether(_settings_kw(env))
    worker = t.worker(concurrency=1)
    before = current_rss_kb()
    tenth = p["runs"] // 10
    for i in range(p["runs"]):
        t.start("bench_park", {"seconds": 3600})
        if i + 1 == tenth:
            worker.run(until_idle=True)
            rss_tenth = current_rss_kb()
            worker = t.worker(concurrency=1)
    worker.run(until_idle=True)
    rss_all = current_rss_kb()
    parked = len(t.list(statuses=[RunStatus.SLEEPING], limit=1_000_000))
    t.close()
    return Sample(
        0.0,
        0.0,
        p["runs"],
        {"parked": parked},
        peak_rss_kb(),
        extra={"rss_kb_before": before, "rss_kb_tenth": rss_tenth, "rss_kb_all": rss_all},
    )


# -- the HTTP API's runs list ------------------------------------------------------------------


def api(env: Env, p: dict[str, Any]) -> Sample:
    """`runs` pending runs started through `Tether.start`, then `requests` first pages of the
    runs list through the app in process (no socket: the app's own cost, auth included)."""
    from fastapi.testclient import TestClient

    from tether.server.app import create_app
    from tether.server.auth import for_tether

    t = _tether(_settings_kw(env))
    for _ in range(p["runs"]):
        last = t.start("bench_seq", {"n": 1})
    auth = for_tether(t)
    bearer = {"Authorization": f"Bearer {auth.provider.issue('bench', roles=('viewer',))}"}
    latencies: list[float] = []
    with TestClient(create_app(t, auth)) as client, Timer() as timer:
        for _ in range(p["requests"]):
            began = time.perf_counter()
            page = client.get("/api/runs", params={"limit": 50}, headers=bearer).json()
            latencies.append(time.perf_counter() - began)
    runs = page["runs"]
    observed = {"listed": len(runs), "newest_first": bool(runs) and runs[0]["id"] == last}
    auth.close()
    t.close()
    return Sample(
        timer.wall_s, timer.cpu_s, p["requests"], observed, extra={"latencies_s": latencies}
    )
