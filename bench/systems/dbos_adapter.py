"""DBOS Transact, configured as its documentation recommends: a system database URL (SQLite
file or PostgreSQL), `@DBOS.workflow` / `@DBOS.step`, `DBOS.launch()`. Its SQLite file is
put in WAL mode before DBOS opens it (WAL is a property of the file, so every connection DBOS
makes uses it), at SQLite's default synchronous=FULL: the durability tether and the floor run
at, and DBOS's best configuration on SQLite (issue 21 measured 557 steps/s on WAL against 340
on the default rollback journal).

The notification poll is set to tether's poll interval (50 ms) so event latency compares like
with like; everything else is DBOS's default. In the multi-process workload each process runs
its share of the workflows itself (DBOS executes a workflow in the process that starts it).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import sqlite3
import time
from typing import Any

from bench.env import Env
from bench.measure import Sample, Stamps, Timer, cpu_seconds, current_rss_kb, peak_rss_kb
from bench.processes import Background, run_once, run_pool

POLL_INTERVAL = 0.05
EXECUTED = 0
CRASH_AT_MARKER = False
STAMPS: Stamps | None = None
_WF: dict[str, Any] = {}


def _url(env: Env) -> str:
    if env.backend == "postgres":
        return env.fresh_postgres()
    path = env.sqlite_path("dbos")
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
    return f"sqlite:///{path}"


def _launch(url: str, executor_id: str = "local", launch: bool = True) -> Any:
    """Configure DBOS, register the benchmark's workflows, launch."""
    from dbos import DBOS

    DBOS(
        config={
            "name": "bench",
            "system_database_url": url,
            "log_level": "WARNING",
            "executor_id": executor_id,
            "notification_listener_polling_interval_sec": POLL_INTERVAL,
            "application_version": "bench-1",
        }
    )

    @DBOS.step()
    def add_one(i: int) -> int:
        global EXECUTED
        EXECUTED += 1
        return i + 1

    @DBOS.step()
    async def add_one_async(i: int) -> int:
        global EXECUTED
        EXECUTED += 1
        return i + 1

    @DBOS.step()
    def marker(i: int) -> int:
        if CRASH_AT_MARKER:
            os.kill(os.getpid(), signal.SIGKILL)
        assert STAMPS is not None
        STAMPS.stamp(i)
        return 0

    @DBOS.step()
    def stamp(i: int) -> int:
        assert STAMPS is not None
        STAMPS.stamp(i)
        return i

    @DBOS.workflow()
    def seq(n: int) -> int:
        total = 0
        for i in range(n):
            total += add_one(i)
        return total

    @DBOS.workflow()
    async def fanout(n: int) -> int:
        return sum(await asyncio.gather(*(add_one_async(i) for i in range(n))))

    @DBOS.workflow()
    def resume(n: int) -> int:
        total = 0
        for i in range(n):
            total += add_one(i)
        marker(n)
        return total

    @DBOS.workflow()
    def event(k: int) -> int:
        got = 0
        for i in range(k):
            msg = DBOS.recv("bench_ev", timeout_seconds=600)
            assert msg is not None and msg["i"] == i
            got += stamp(i) + 1 - i
        return got

    @DBOS.workflow()
    async def park(seconds: float) -> int:
        await DBOS.sleep_async(seconds)
        return 1

    @DBOS.step()
    def model(turn: int) -> str:
        """The scripted model: turn i answers "i"."""
        return str(turn)

    @DBOS.step()
    def add(a: int, b: int) -> int:
        return a + b

    @DBOS.workflow()
    def agent(turns: int) -> int:
        total = 0
        for i in range(turns):
            total += add(int(model(i)), 1)
        return total

    _WF.update(seq=seq, fanout=fanout, resume=resume, event=event, park=park, agent=agent)
    if launch:
        DBOS.launch()
    return DBOS


def _steps(dbos: Any, wfid: str, name: str) -> int:
    return sum(1 for s in dbos.list_workflow_steps(wfid) if s["function_name"].endswith(name))


def _one_run(env: Env, p: dict[str, Any], wf: str, step: str) -> Sample:
    dbos = _launch(_url(env))
    with Timer() as t:
        handle = dbos.start_workflow(_WF[wf], p["n"])
        total = handle.get_result()
    observed = {
        "total": total,
        "journaled": _steps(dbos, handle.workflow_id, step),
        "executed": EXECUTED,
    }
    return Sample(t.wall_s, t.cpu_s, p["n"], observed)


def seq(env: Env, p: dict[str, Any]) -> Sample:
    return _one_run(env, p, "seq", "add_one")


def fanout(env: Env, p: dict[str, Any]) -> Sample:
    return _one_run(env, p, "fanout", "add_one_async")


def agent(env: Env, p: dict[str, Any]) -> Sample:
    """`runs` agents one after another, after one untimed, as tether's; a step each call."""
    dbos = _launch(_url(env))
    dbos.start_workflow(_WF["agent"], p["turns"]).get_result()
    total, ids = 0, []
    with Timer() as t:
        for _ in range(p["runs"]):
            handle = dbos.start_workflow(_WF["agent"], p["turns"])
            total += handle.get_result()
            ids.append(handle.workflow_id)
    calls = sum(len(dbos.list_workflow_steps(wfid)) for wfid in ids)
    return Sample(t.wall_s, t.cpu_s, p["runs"] * p["turns"], {"total": total, "calls": calls})


# -- many workflows, several processes -------------------------------------------------------


def _batch_prepare(url: str, runs: int, steps: int, index: int, count: int) -> Any:
    dbos = _launch(url, executor_id=f"bench-{index}")
    return dbos, [r for r in range(runs) if r % count == index], steps


def _batch_work(state: Any) -> dict[str, int]:
    from dbos import SetWorkflowID

    dbos, mine, steps = state
    for r in mine:
        with SetWorkflowID(f"batch-{r}"):
            dbos.start_workflow(_WF["seq"], steps).get_result()
    return {"executed": EXECUTED}


def batch(env: Env, p: dict[str, Any]) -> Sample:
    from dbos import DBOSClient

    url = _url(env)
    client = DBOSClient(system_database_url=url)
    prepare = functools.partial(_batch_prepare, url, p["runs"], p["steps"])
    pool = run_pool(prepare, _batch_work, p["workers"])
    want = p["steps"] * (p["steps"] + 1) // 2
    done = [
        w for w in client.list_workflows(status="SUCCESS") if w.workflow_id.startswith("batch-")
    ]
    observed = {
        "completed": len(done),
        "correct": sum(1 for w in done if w.output == want),
        "journaled": sum(len(client.list_workflow_steps(w.workflow_id)) for w in done),
        **pool.facts,
    }
    client.destroy()
    return Sample(pool.wall_s, pool.cpu_s, p["runs"], observed, pool.peak_rss_kb)


# -- event latency ---------------------------------------------------------------------------


def _serve(arg: tuple[str, str, int], ready: Any) -> None:
    from dbos import SetWorkflowID

    global STAMPS
    url, stamps, k = arg
    STAMPS = Stamps(stamps)  # type: ignore[arg-type]
    dbos = _launch(url)
    with SetWorkflowID("event-1"):
        handle = dbos.start_workflow(_WF["event"], k)
    ready.set()
    handle.get_result()
    time.sleep(3600)


def event(env: Env, p: dict[str, Any]) -> Sample:
    from dbos import DBOSClient

    url = _url(env)
    stamps = Stamps(env.dir / "stamps.txt")
    latencies: list[float] = []
    with Background(_serve, (url, str(stamps.path), p["events"])):
        client = DBOSClient(system_database_url=url)
        for i in range(p["events"]):
            if i:
                stamps.wait_for(i - 1)
            # DBOS shows no "waiting in recv" state; a message sent early would be queued and
            # its latency understated, so give the workflow ample time to reach recv.
            time.sleep(0.2)
            sent = time.time()
            client.send("event-1", {"i": i}, topic="bench_ev")
            latencies.append(stamps.wait_for(i) - sent)
        output = client.retrieve_workflow("event-1").get_result()
    client.destroy()
    return Sample(
        sum(latencies),
        0.0,
        len(latencies),
        {"delivered": output},
        extra={"latencies_s": latencies, "poll_interval_s": POLL_INTERVAL},
    )


# -- resume after a kill ---------------------------------------------------------------------


def _crash(arg: tuple[str, int]) -> None:
    from dbos import SetWorkflowID

    global CRASH_AT_MARKER
    url, n = arg
    CRASH_AT_MARKER = True
    dbos = _launch(url)
    with SetWorkflowID("resume-1"):
        dbos.start_workflow(_WF["resume"], n).get_result()


def resume(env: Env, p: dict[str, Any]) -> Sample:
    global STAMPS
    url = _url(env)
    code = run_once(_crash, (url, p["n"]))
    if code != -9:
        raise RuntimeError(f"the run was not killed mid-step (exit {code})")
    STAMPS = stamps = Stamps(env.dir / "stamps.txt")
    # Launch as another executor so launch itself recovers nothing; then recover the dead
    # executor's workflows through the same function launch uses.
    dbos = _launch(url, executor_id="bench-resumer")
    cpu0 = cpu_seconds()
    sent = time.time()
    handles = dbos._recover_pending_workflows(["local"])
    reached = stamps.wait_for(p["n"])
    cpu = cpu_seconds() - cpu0
    total = handles[0].get_result() if handles else None
    observed = {
        "total": total,
        "journaled": _steps(dbos, "resume-1", "add_one") + _steps(dbos, "resume-1", "marker"),
        "reexecuted": EXECUTED,
    }
    return Sample(reached - sent, cpu, 1, observed)


# -- memory with parked runs -----------------------------------------------------------------


def memory(env: Env, p: dict[str, Any]) -> Sample:
    dbos = _launch(_url(env))
    before = current_rss_kb()
    tenth = p["runs"] // 10

    def parked_count() -> int:
        return len(dbos.list_workflows(status="PENDING", load_input=False, load_output=False))

    def settle(n: int) -> None:
        # A DBOS sleep holds its workflow in this process: parked once each has recorded it.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            pending = dbos.list_workflows(status="PENDING", load_input=False, load_output=False)
            sample = pending[:5]
            if len(pending) >= n and all(_steps(dbos, w.workflow_id, "sleep") for w in sample):
                return
            time.sleep(0.2)

    for i in range(p["runs"]):
        dbos.start_workflow(_WF["park"], 3600.0)
        if i + 1 == tenth:
            settle(tenth)
            rss_tenth = current_rss_kb()
    settle(p["runs"])
    rss_all = current_rss_kb()
    return Sample(
        0.0,
        0.0,
        p["runs"],
        {"parked": parked_count()},
        peak_rss_kb(),
        extra={"rss_kb_before": before, "rss_kb_tenth": rss_tenth, "rss_kb_all": rss_all},
    )
