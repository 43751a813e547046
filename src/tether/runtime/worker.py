"""The worker: claims runnable runs under a lease, executes them, heartbeats the leases.

Heartbeats come from their own thread, so a CPU-bound step cannot starve them. Each run
executes on a pool thread with its own event loop; a run parks by unwinding, so a parked run
holds no thread, task or connection here. On stop, runs are released at their next primitive
boundary (never in the middle of a step) and go back to pending for another worker.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

from tether.errors import DatabaseUnavailable
from tether.foundation.checkpoint.contract import Checkpointer, Claim, Hosted, RunStatus, Wait
from tether.foundation.trace.contract import TraceSink
from tether.runtime.commits import GroupCommit
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
    # told what a run executed here parked on (the view of `run --wait` shows the event)
    on_park: Callable[[str, list[Wait]], None] | None = None
    owner: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")


# How far into a lease that was not renewed this process stops acting for the run: its tool
# processes stop themselves and no new primitive starts. Before the lease expires and another
# worker may claim the run, with room for a kill to land.
_STOP_AT = 0.8


class Heartbeats:
    """Extends the leases this process holds, every lease/3 seconds, from its own thread, and
    bounds what runs for them: I1 kills a run's tool processes when its lease is lost, and
    they stop themselves should this process freeze and stop renewing; `until` tells the
    execution when to stop starting primitives (a frozen worker, waking, starts none).

    Each beat also records, in I2, the workflow versions this process hosts and what they
    resume, alive for one lease: that is what makes a run stranded or not for anyone asking,
    whatever that asker has registered."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._hosts = [
            Hosted(workflow=d.name, version=d.version, resumes=d.resumes)
            for d in services.registry.all()
        ]
        self._held: dict[str, str] = {}
        self._until: dict[str, float] = {}  # run id -> time.monotonic() to stop acting by
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._failing = False
        self._thread = threading.Thread(target=self._loop, name="tether-heartbeat", daemon=True)
        self._thread.start()

    def hold(self, run_id: str, token: str, claimed_at: float | None = None) -> None:
        """`claimed_at`: time.monotonic() before the claim (its lease runs from then)."""
        with self._lock:
            self._held[run_id] = token
            self._renewed(run_id, time.monotonic() if claimed_at is None else claimed_at)

    def drop(self, run_id: str) -> None:
        with self._lock:
            self._held.pop(run_id, None)
            self._until.pop(run_id, None)
        if self._services.foundations is not None:
            self._services.foundations.lease_released(run_id)

    def until(self, run_id: str) -> float | None:
        """When this process must stop acting for the run (time.monotonic()); None if it does
        not hold it."""
        return self._until.get(run_id)

    def _renewed(self, run_id: str, since: float) -> None:
        """With the lock held."""
        until = self._until[run_id] = since + self._services.lease_seconds * _STOP_AT
        if self._services.foundations is not None:
            self._services.foundations.lease_renewed(run_id, until)

    def _record_worker(self, ttl_seconds: float | None = None) -> None:
        s = self._services
        try:
            ttl = s.lease_seconds if ttl_seconds is None else ttl_seconds
            s.checkpointer.record_worker(s.owner, self._hosts, ttl)
            self._failing = False
        except DatabaseUnavailable as e:
            if not self._failing:
                log.warning("recording this worker's versions failed: %s", e)
            self._failing = True

    def _loop(self) -> None:
        s = self._services
        self._record_worker()
        while not self._stop.wait(s.lease_seconds / 3):
            self._record_worker()
            with self._lock:
                held = list(self._held.items())
            for run_id, token in held:
                since = time.monotonic()  # the database extends the lease from a later instant
                try:
                    if not s.checkpointer.heartbeat(run_id, token, s.lease_seconds):
                        with self._lock:  # its next write will be rejected: start nothing
                            self._held.pop(run_id, None)
                            self._until[run_id] = -math.inf
                        if s.foundations is not None:
                            s.foundations.lease_lost(run_id)
                        continue
                    self._failing = False
                except DatabaseUnavailable as e:
                    if not self._failing:  # one line an outage, not one a run and a beat
                        log.warning("heartbeat for %s failed: %s", run_id, e)
                    self._failing = True
                    continue
                with self._lock:
                    if self._held.get(run_id) == token:  # not dropped meanwhile
                        self._renewed(run_id, since)
        # Stopped cleanly: hosting nothing from now on, so its versions' parked runs show as
        # stranded at once rather than a lease later (a killed worker's row just expires).
        self._record_worker(ttl_seconds=0)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


_loops = threading.local()
# Each run thread's loop, closed by `close_ended_loops` once its thread has ended: left to the
# garbage collector with the thread, a loop may meet its self-pipe closed first and print a
# traceback to the worker's stderr (seen after a PostgreSQL restart).
_opened: list[tuple[threading.Thread, asyncio.AbstractEventLoop]] = []
_opened_lock = threading.Lock()
_PARKED = (RunStatus.WAITING, RunStatus.SLEEPING, RunStatus.PAUSED)


def close_ended_loops() -> None:
    """Close the loops of run threads that have ended (a worker's pool, shut down)."""
    with _opened_lock:
        for thread, loop in _opened:
            if not thread.is_alive():
                loop.close()
        _opened[:] = [(thread, loop) for thread, loop in _opened if thread.is_alive()]


def execute_claim(
    services: Services,
    claim: Claim,
    stopping: threading.Event,
    heartbeats: Heartbeats,
    claimed_at: float | None = None,
    commits: GroupCommit | None = None,
) -> RunStatus:
    """Execute one claimed run on the calling thread's own event loop; `claimed_at` is
    time.monotonic() before the claim; `commits`, the worker's group commit its appends join."""
    loop: asyncio.AbstractEventLoop | None = getattr(_loops, "loop", None)
    if loop is None or loop.is_closed():
        loop = _loops.loop = asyncio.new_event_loop()
        with _opened_lock:
            _opened.append((threading.current_thread(), loop))
    run = claim.run
    wf = services.registry.for_run(run.workflow, run.version)
    if wf is None:  # claims filter on what we accept; a registry change raced the claim
        services.checkpointer.release(run.id, claim.token)
        return RunStatus.PENDING
    heartbeats.hold(run.id, claim.token, claimed_at)
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
            lease=partial(heartbeats.until, run.id),
            lease_seconds=services.lease_seconds,
            commits=commits,
        )
        status = loop.run_until_complete(execute(ex))
        if services.on_park is not None and status in _PARKED:
            services.on_park(run.id, list(ex.waits))
        return status
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

    @property
    def owner(self) -> str:
        return self.services.owner

    def stop(self) -> None:
        """Stop claiming; running runs are released at their next primitive boundary."""
        self.stopping.set()

    def run(self, until_idle: bool = False) -> int:
        s = self.services
        accepts, queues = s.registry.accepts(), s.registry.queues()
        wake = threading.Event()
        heartbeats = Heartbeats(s)
        # One run at a time has nothing to share a commit with: its appends skip the hand-off.
        commits = GroupCommit(s.checkpointer) if self.concurrency > 1 else None
        active: set[Future[RunStatus]] = set()
        backoff, failures = s.poll_interval, 0
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
                    claimed_at = time.monotonic()
                    if free > 0:
                        try:
                            claims = s.checkpointer.claim(
                                s.owner, accepts, free, s.lease_seconds, queues=queues
                            )
                        except DatabaseUnavailable as e:
                            # One line for the outage, not one a try; nothing but a stop cuts
                            # the backoff short (every idle poll would otherwise).
                            failures += 1
                            if failures == 1:
                                log.warning("claim failed, retrying with backoff: %s", e)
                            self.stopping.wait(backoff)
                            backoff = min(backoff * 2, 10.0)
                            continue
                        if failures:
                            log.warning("claiming again after %d failed tries", failures)
                        failures, backoff = 0, s.poll_interval
                    for claim in claims:
                        fut = pool.submit(self._execute, claim, heartbeats, claimed_at, commits)
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
                if commits is not None:
                    commits.close()
                heartbeats.close()
                # The listener may be inside wait_for_work: joined here, it is done with the
                # checkpointer before the caller closes it ("closed database" otherwise).
                notifier.join()
        close_ended_loops()  # the pool's threads have ended
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

    def _execute(
        self,
        claim: Claim,
        heartbeats: Heartbeats,
        claimed_at: float,
        commits: GroupCommit | None,
    ) -> RunStatus:
        try:
            status = execute_claim(
                self.services, claim, self.stopping, heartbeats, claimed_at, commits
            )
        except DatabaseUnavailable as e:  # say it in a line: the database's, not the worker's
            log.warning("run %s left to its lease: %s", claim.run.id, e)
            return RunStatus.PENDING
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
