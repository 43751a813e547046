"""The worker: claims runnable runs under a lease, executes them, heartbeats the leases.

Heartbeats come from their own thread, so a CPU-bound step cannot starve them. Each run
executes on a pool thread with its own event loop; a run parks by unwinding, so a parked run
holds no thread, task or connection here. On stop, runs are released at their next primitive
boundary (never in the middle of a step) and go back to pending for another worker.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from tether.errors import DatabaseUnavailable
from tether.foundation.checkpoint.contract import Checkpointer, Claim, RunStatus
from tether.foundation.trace.contract import TraceSink
from tether.runtime.driver import execute
from tether.runtime.execution import Execution
from tether.runtime.foundations import Foundations
from tether.runtime.registry import Registry
from tether.runtime.retry import DEFAULT_RETRY, RetryPolicy
from tether.runtime.schedules import Start, fire_due
from tether.runtime.values import Codec

log = logging.getLogger("tether.worker")


@dataclass
class Services:
    """What executing a run needs; assembled by the client from configured backends."""

    checkpointer: Checkpointer
    registry: Registry
    codec: Codec
    sink: TraceSink
    lease_seconds: float = 30.0
    poll_interval: float = 0.5
    default_retry: RetryPolicy = DEFAULT_RETRY
    foundations: Foundations | None = None
    start: Start | None = None  # how a schedule's tick starts a run (the client's `start`)
    owner: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")


class Heartbeats:
    """Extends the leases this process holds, every lease/3 seconds, from its own thread."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._held: dict[str, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tether-heartbeat", daemon=True)
        self._thread.start()

    def hold(self, run_id: str, token: str) -> None:
        with self._lock:
            self._held[run_id] = token

    def drop(self, run_id: str) -> None:
        with self._lock:
            self._held.pop(run_id, None)

    def _loop(self) -> None:
        s = self._services
        while not self._stop.wait(s.lease_seconds / 3):
            with self._lock:
                held = list(self._held.items())
            for run_id, token in held:
                try:
                    if not s.checkpointer.heartbeat(run_id, token, s.lease_seconds):
                        self.drop(run_id)  # its next write will be rejected; nothing to extend
                except DatabaseUnavailable as e:
                    log.warning("heartbeat for %s failed: %s", run_id, e)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


_loops = threading.local()


def execute_claim(
    services: Services, claim: Claim, stopping: threading.Event, heartbeats: Heartbeats
) -> RunStatus:
    """Execute one claimed run on the calling thread's own event loop."""
    loop: asyncio.AbstractEventLoop | None = getattr(_loops, "loop", None)
    if loop is None or loop.is_closed():
        loop = _loops.loop = asyncio.new_event_loop()
    run = claim.run
    wf = services.registry.for_run(run.workflow, run.version)
    if wf is None:  # claims filter on what we accept; a registry change raced the claim
        services.checkpointer.release(run.id, claim.token)
        return RunStatus.PENDING
    heartbeats.hold(run.id, claim.token)
    try:
        ex = Execution(
            claim,
            wf,
            services.checkpointer,
            services.codec,
            services.sink,
            default_retry=services.default_retry,
            stopping=stopping,
            foundations=services.foundations,
            lease_seconds=services.lease_seconds,
        )
        return loop.run_until_complete(execute(ex))
    finally:
        heartbeats.drop(run.id)


class Worker:
    """`tether worker`: runs what it can until stopped (or, with until_idle, until nothing is
    runnable)."""

    def __init__(self, services: Services, concurrency: int = 1) -> None:
        self.services = services
        self.concurrency = max(1, concurrency)
        self.stopping = threading.Event()
        self.executed = 0
        self.on_finish: Callable[[str, RunStatus], None] | None = None
        self._schedules_due = 0.0  # time.monotonic() of the next look at the schedules

    def stop(self) -> None:
        """Stop claiming; running runs are released at their next primitive boundary."""
        self.stopping.set()

    def run(self, until_idle: bool = False) -> int:
        s = self.services
        accepts = s.registry.accepts()
        wake = threading.Event()
        heartbeats = Heartbeats(s)
        active: set[Future[RunStatus]] = set()
        backoff = s.poll_interval
        notifier = threading.Thread(
            target=self._listen, args=(wake,), name="tether-notify", daemon=True
        )
        notifier.start()
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="tether-run") as pool:
            try:
                while not self.stopping.is_set():
                    active = {f for f in active if not f.done()}
                    self._fire_schedules()
                    free = self.concurrency - len(active)
                    claims: list[Claim] = []
                    if free > 0:
                        try:
                            claims = s.checkpointer.claim(s.owner, accepts, free, s.lease_seconds)
                            backoff = s.poll_interval
                        except DatabaseUnavailable as e:
                            log.warning("claim failed, retrying in %.1fs: %s", backoff, e)
                            backoff = min(backoff * 2, 10.0)
                    for claim in claims:
                        fut = pool.submit(self._execute, claim, heartbeats)
                        fut.add_done_callback(lambda _f: wake.set())
                        active.add(fut)
                    if claims:
                        continue
                    if until_idle and not active:
                        break
                    wake.wait(backoff)
                    wake.clear()
            finally:
                self.stopping.set()
                for fut in active:
                    fut.exception()  # wait: each run finishes or is released at a boundary
                heartbeats.close()
        return self.executed

    def _fire_schedules(self) -> None:
        """At most once a poll interval: the loop wakes at every commit any process makes,
        and cron ticks come a minute apart."""
        s = self.services
        now = time.monotonic()
        if s.start is None or now < self._schedules_due:
            return
        self._schedules_due = now + s.poll_interval
        try:
            fire_due(s.checkpointer, s.start)
        except DatabaseUnavailable as e:
            log.warning("schedules not checked: %s", e)

    def _listen(self, wake: threading.Event) -> None:
        """Turn the checkpointer's work notifications into wake-ups of the claim loop."""
        s = self.services
        while not self.stopping.is_set():
            try:
                s.checkpointer.wait_for_work(s.poll_interval)
            except DatabaseUnavailable as e:
                log.warning("waiting for work failed: %s", e)
                self.stopping.wait(s.poll_interval)
            wake.set()

    def _execute(self, claim: Claim, heartbeats: Heartbeats) -> RunStatus:
        try:
            status = execute_claim(self.services, claim, self.stopping, heartbeats)
        except Exception:
            log.exception(
                "run %s: the worker failed outside the workflow; its lease will "
                "expire and another claim resumes it",
                claim.run.id,
            )
            return RunStatus.PENDING
        self.executed += 1
        if self.on_finish is not None:
            self.on_finish(claim.run.id, status)
        return status
