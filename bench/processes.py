"""Worker processes for the multi-process workloads.

`run_pool` starts N fresh (spawned) processes; each does its untimed preparation (imports,
connections, registration), then all wait at a barrier so the clock starts only when every
worker is ready, and each reports its own CPU and peak RSS over the timed work. `Background`
keeps one worker serving (a waiting workflow's worker) until the measurement is over.

Workers leave with `os._exit`: temporalio may abort at interpreter exit, and nothing a worker
holds needs a clean shutdown; the result queue is flushed first.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.measure import cpu_seconds, peak_rss_kb

_SPAWN = multiprocessing.get_context("spawn")

Prepare = Callable[[int, int], Any]  # (index, count) -> state for `work`
Work = Callable[[Any], dict[str, int]]  # state -> facts to check (e.g. steps executed)


@dataclass
class PoolResult:
    wall_s: float  # from the release of the barrier to the last worker's report
    cpu_s: float  # the workers' own CPU over their timed work, summed
    peak_rss_kb: int  # the largest worker's
    facts: dict[str, int]  # the workers' facts, summed


def _member(
    prepare: Prepare, work: Work, index: int, count: int, barrier: Any, go: Any, out: Any
) -> None:
    state = prepare(index, count)
    barrier.wait()
    go.wait()
    cpu0 = cpu_seconds()
    facts = work(state)
    out.put((cpu_seconds() - cpu0, peak_rss_kb(), facts))
    out.close()
    out.join_thread()
    os._exit(0)


def run_pool(
    prepare: Prepare,
    work: Work,
    count: int,
    kick: Callable[[], None] = lambda: None,
    timeout: float = 600.0,
) -> PoolResult:
    """Run `work` in `count` ready workers at once; `kick` runs first inside the timed region
    (e.g. starting the runs the workers will claim)."""
    barrier = _SPAWN.Barrier(count + 1)
    go = _SPAWN.Event()
    out = _SPAWN.Queue()
    procs = [
        _SPAWN.Process(target=_member, args=(prepare, work, i, count, barrier, go, out))
        for i in range(count)
    ]
    for p in procs:
        p.start()
    try:
        barrier.wait(timeout=timeout)
        start = time.perf_counter()
        kick()
        go.set()
        reports = [_get(out, procs, timeout) for _ in procs]
        wall = time.perf_counter() - start
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    facts: dict[str, int] = {}
    for _, _, f in reports:
        for k, v in f.items():
            facts[k] = facts.get(k, 0) + v
    return PoolResult(
        wall_s=wall,
        cpu_s=sum(r[0] for r in reports),
        peak_rss_kb=max(r[1] for r in reports),
        facts=facts,
    )


def _get(out: Any, procs: list[Any], timeout: float) -> Any:
    """The next report, failing fast if a worker died instead of reporting."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return out.get(timeout=0.5)
        except queue.Empty:
            dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            if dead:
                raise RuntimeError(f"a worker process died (exit codes {dead})") from None
    raise TimeoutError(f"workers did not finish within {timeout:.0f}s")


def _serve(target: Callable[[Any, Any], None], arg: Any, ready: Any) -> None:
    target(arg, ready)
    os._exit(0)


class Background:
    """One process running `target(arg, ready)` until `stop`; `target` sets `ready` once it
    is serving."""

    def __init__(self, target: Callable[[Any, Any], None], arg: Any, timeout: float = 120.0):
        ready = _SPAWN.Event()
        self.proc = _SPAWN.Process(target=_serve, args=(target, arg, ready))
        self.proc.start()
        deadline = time.monotonic() + timeout
        while not ready.wait(0.2):
            if not self.proc.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"background worker failed to start (exit {self.proc.exitcode})")

    def stop(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(timeout=30)

    def __enter__(self) -> Background:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _once(target: Callable[[Any], None], arg: Any) -> None:
    target(arg)
    os._exit(0)


def run_once(target: Callable[[Any], None], arg: Any, timeout: float = 300.0) -> int:
    """Run `target(arg)` in a fresh process to its end (or its death); its exit code. The
    resume workload uses it to build a run that a SIGKILL interrupted."""
    proc = _SPAWN.Process(target=_once, args=(target, arg))
    proc.start()
    proc.join(timeout=timeout)
    if proc.is_alive():
        proc.kill()
        proc.join()
        raise TimeoutError(f"setup process did not finish within {timeout:.0f}s")
    return int(proc.exitcode or 0)
