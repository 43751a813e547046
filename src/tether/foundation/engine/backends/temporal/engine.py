"""The `temporal` engine: tether's lifecycle over a Temporal cluster.

Records: the runs index (one row per run, its status, input and output), waits, held events
and the journal stay in I2's tables, so `tether runs`, `status`, `inspect` and `send_event`
read and write what they do on the local engine; each run's execution lives in Temporal's
history. A run's execution takes its I2 lease when a worker begins it (until then it is
pending), parks in I2 on a sleep, an event wait or a child, as the local engine does (the
lease released, the run sleeping or waiting), takes the lease again when Temporal wakes it,
and writes its end there through an activity.

Routing and versions: a run goes to the task queue `PREFIX:name@version`. A worker polls the
queue of every version it registered and, for a version with `resumes=`, the queues of the
older versions it covers that have live runs in the index: tether's versioning rule without
`workflow.patched()` in agent code.

Temporal's client is asyncio; this engine's methods are synchronous like the rest of the
lifecycle, so it keeps one event loop on its own thread for the client and the workers.

History stays small: step arguments and results, tool arguments and model requests over the
blob threshold cross it as blob references (use the `s3` blob store when workers run on
several hosts), and an execution whose history passes `temporal_history_events` continues as
new, carrying its lease and its ctx.now/uuid/random values; the new execution answers what
the run did from I2's journal without an activity.

Not as on the local engine: inside a gather the branches share the run's one lease, so a
sleep or a child there waits without parking the run (it shows running) and a
`wait_for_event` or an approval there is refused. A start with a queue, a debounce or a
throttle is refused: they live in the local engine's claim and start.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, Self, TypeVar

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import ResetStickyTaskQueueRequest
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from tether.errors import ConfigurationError, EngineUnavailable, RunStateError
from tether.foundation.checkpoint.contract import (
    TERMINAL,
    EventReceipt,
    JournalEntry,
    NewRun,
    RunFilter,
    RunRecord,
    RunStatus,
)
from tether.foundation.engine.backends.temporal.activities import Activities
from tether.foundation.engine.backends.temporal.context import BINDINGS, Binding
from tether.foundation.engine.backends.temporal.messages import (
    WAKE_SIGNAL,
    WORKFLOW_NAME,
    RunArgs,
)
from tether.foundation.engine.backends.temporal.workflow import TetherWorkflow
from tether.runtime.schedules import fire_due
from tether.runtime.worker import Heartbeats, Services
from tether.settings import Settings

T = TypeVar("T")
_LIVE = [s for s in RunStatus if s not in TERMINAL]
_PARKED = (RunStatus.SLEEPING, RunStatus.WAITING)
# How long stopping a followed run waits for its workflow task in flight (`_settle`): ms, when
# the worker is alive; bounded, should the task be stuck.
_SETTLE_SECONDS = 5.0


class TemporalEngine:
    name = "temporal"

    def __init__(
        self, services: Services, address: str, namespace: str, prefix: str, history_events: int
    ) -> None:
        self.services = services
        self.history_events = history_events
        self.checkpointer = services.checkpointer
        self.registry = services.registry
        self.address, self.namespace, self.prefix = address, namespace, prefix
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="tether-temporal", daemon=True
        )
        self._thread.start()
        self._client: Client | None = None
        self._background: TemporalWorker | None = None
        self._following = threading.Lock()
        self._followers = 0

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> Self:
        services = options.pop("services", None)
        if not isinstance(services, Services):
            raise ConfigurationError("the temporal engine is built by Tether, with its services")
        if options:
            raise TypeError(f"unexpected options {sorted(options)}")
        return cls(
            services,
            settings.temporal_address,
            settings.temporal_namespace,
            settings.temporal_queue_prefix,
            settings.temporal_history_events,
        )

    # -- plumbing ---------------------------------------------------------------------------

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    async def client(self) -> Client:
        if self._client is None:
            try:
                self._client = await Client.connect(
                    self.address, namespace=self.namespace, data_converter=pydantic_data_converter
                )
            except RuntimeError as e:  # the SDK's bridge reports a refused connection so
                raise EngineUnavailable("temporal", self.address, str(e)) from e
        return self._client

    def queue(self, workflow: str, version: str) -> str:
        return f"{self.prefix}:{workflow}@{version}"

    def execution_id(self, run_id: str) -> str:
        """The run's Temporal workflow id: workflow ids are unique per namespace, so they carry
        the deployment's prefix as its task queues do (two tethers sharing a namespace never
        meet)."""
        return f"{self.prefix}:{run_id}"

    def _launch(self, run: RunRecord, again: bool = False) -> None:
        """Start the run's Temporal workflow, which takes the run's I2 lease when a worker
        begins it (until then the run is pending). `again`: a retried or resolved run, whose
        previous execution has written its end and may not have closed yet; otherwise an
        execution already open for the run is the one (a launch is safe to repeat)."""
        args = RunArgs(run_id=run.id, workflow=run.workflow, version=run.version, input=run.input)
        conflict = (
            WorkflowIDConflictPolicy.TERMINATE_EXISTING
            if again
            else WorkflowIDConflictPolicy.USE_EXISTING
        )

        async def go() -> None:
            client = await self.client()
            await client.start_workflow(
                WORKFLOW_NAME,
                args,
                id=self.execution_id(run.id),
                task_queue=self.queue(run.workflow, run.version),
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                id_conflict_policy=conflict,
            )

        self._call(go())

    # -- records ----------------------------------------------------------------------------

    def start(self, new: NewRun) -> RunRecord:
        if new.queue is not None or new.debounce is not None or new.throttle is not None:
            raise ConfigurationError(
                "queues, debounce and throttle are enforced by the local engine's claim and "
                "start; the temporal engine does not apply them yet (use Temporal's task queues)"
            )
        new = new.model_copy(update={"meta": {**new.meta, "engine": self.name}})
        run, created = self.checkpointer.create_run(new)
        if created:
            self._launch(run)
        return self.checkpointer.get_run(run.id)

    def status(self, run_id: str) -> RunRecord:
        return self.checkpointer.get_run(run_id)

    def list_runs(self, filter: RunFilter) -> list[RunRecord]:
        return self.checkpointer.list_runs(filter)

    def journal(self, run_id: str) -> list[JournalEntry]:
        """Steps, tool and model calls, journaled in I2 by their activities."""
        return self.checkpointer.journal(run_id)

    def _tree(self, run_id: str) -> list[str]:
        """The run and its live descendants."""
        tree, i = [run_id], 0
        while i < len(tree):
            live = RunFilter(parent_id=tree[i], statuses=_LIVE, limit=10_000)
            tree += [c.id for c in self.checkpointer.list_runs(live)]
            i += 1
        return tree

    def cancel(self, run_id: str) -> RunRecord:
        self.checkpointer.cancel(run_id)  # RunStateError if finished
        for rid in self._tree(run_id):  # each execution writes its own end in the index
            self._call(self._cancel(rid))
        return self.checkpointer.get_run(run_id)

    async def _unstick(self, run_id: str) -> None:
        """The run's next workflow task goes to any worker of its queue at once, not to the
        worker this process just stopped (Temporal would wait out the sticky timeout)."""
        client = await self.client()
        request = ResetStickyTaskQueueRequest(
            namespace=self.namespace,
            execution=WorkflowExecution(workflow_id=self.execution_id(run_id)),
        )
        with contextlib.suppress(RPCError):  # closed meanwhile
            await client.workflow_service.reset_sticky_task_queue(request)

    async def _settle(self, run_id: str) -> None:
        """Until the parked run has no workflow task pending (one scheduled goes to this
        process's worker, still polling; one started is in its hands). A run shows parked in
        I2 (its park activity committed) before its workflow has started the timer that wakes
        it: a worker stopped then abandoned that workflow task, Temporal gave it to another
        worker only after its 10 s task timeout, and the run woke 9 s late (3 runs in 9
        here). Only a parked run is waited for: a running one would run on meanwhile."""
        handle = (await self.client()).get_workflow_handle(self.execution_id(run_id))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _SETTLE_SECONDS
        while loop.time() < deadline:
            try:
                raw = (await handle.describe()).raw_description
            except RPCError:  # closed meanwhile, or never started
                return
            if not raw.HasField("pending_workflow_task"):
                return
            await asyncio.sleep(0.02)

    async def _cancel(self, run_id: str) -> None:
        # already closed: its finish activity has written the index
        with contextlib.suppress(RPCError):
            handle = (await self.client()).get_workflow_handle(self.execution_id(run_id))
            await handle.cancel()

    def retry(self, run_id: str) -> RunRecord:
        """The failed run executes again on a new Temporal execution: steps, tool and model
        calls committed in I2's journal return their results without running again, as on
        the local engine (timers and waits before the failed step are waited again)."""
        run = self.checkpointer.retry(run_id)
        self._launch(run, again=True)
        return self.checkpointer.get_run(run_id)

    def send_event(self, name: str, data: str, run_id: str | None = None) -> EventReceipt:
        """I2 stores the event and wakes the runs parked on a matching wait (journaling the
        event for each), or holds it for waits reached later, as on the local engine; each
        woken run's execution is then signalled to take it."""
        receipt = self.checkpointer.send_event(name, data, run_id=run_id)
        for woken in receipt.woken:
            self._call(self._wake(woken))
        return receipt

    async def _wake(self, run_id: str) -> None:
        with contextlib.suppress(RPCError):  # it finished meanwhile
            handle = (await self.client()).get_workflow_handle(self.execution_id(run_id))
            await handle.signal(WAKE_SIGNAL)

    def resolve(self, run_id: str, step_id: str) -> RunRecord:
        """The run goes on from the resolved call on a new Temporal execution: what its
        journal holds returns without running again, and I1 answers the resolved call."""
        run = self.checkpointer.resolve(run_id, step_id, None)
        self._launch(run, again=True)
        return self.checkpointer.get_run(run_id)

    # -- execution --------------------------------------------------------------------------

    def worker(self, concurrency: int = 1) -> TemporalWorker:
        return TemporalWorker(self, concurrency)

    def run(
        self,
        run_id: str,
        stop: threading.Event,
        on_wait: Callable[[RunRecord], None] | None = None,
    ) -> RunRecord:
        """Follow the run to its end while a worker in this process executes it."""
        run = self.checkpointer.get_run(run_id)
        if run.status not in TERMINAL and self.registry.for_run(run.workflow, run.version) is None:
            raise RunStateError(
                f"run {run_id} is pinned to {run.workflow_id}, which this process has "
                "not registered; start a worker that has it"
            )
        if run.status is RunStatus.PENDING:
            self._launch(run)  # started by another deploy or process: a repeat is a no-op
        with self._following:
            if self._background is None:
                self._background = self.worker(8)
                self._background.begin()
            self._followers += 1
        try:
            return self._follow(run_id, stop, on_wait)
        finally:
            with self._following:
                self._followers -= 1
                # stopped early: nothing executes the run in this process any more, as on
                # the local engine (a parked run holds no worker; resuming it replays)
                if stop.is_set() and self._followers == 0 and self._background is not None:
                    for rid in self._tree(run_id):
                        if self.checkpointer.get_run(rid).status in _PARKED:
                            self._call(self._settle(rid))
                    self._background.end()
                    self._background = None
                    for rid in self._tree(run_id):
                        self._call(self._unstick(rid))

    def _follow(
        self, run_id: str, stop: threading.Event, on_wait: Callable[[RunRecord], None] | None
    ) -> RunRecord:
        poll = self.services.poll_interval
        while True:
            run = self.checkpointer.get_run(run_id)
            if run.status in TERMINAL or stop.is_set():
                return run
            if run.status in (RunStatus.NEEDS_ATTENTION, RunStatus.PAUSED):
                return run
            if on_wait is not None and run.status in (RunStatus.SLEEPING, RunStatus.WAITING):
                on_wait(run)
            stop.wait(poll)

    def close(self) -> None:
        if self._background is not None:
            self._background.end()
            self._background = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


class TemporalWorker:
    """Polls the task queues of the workflows this process registered (and the older versions
    their `resumes=` cover that have live runs).

    While it polls it records in I2, with the local worker's heartbeats, the versions it hosts
    and what they resume (a clean stop records that it hosts nothing): stranded is read from
    those rows whichever engine executes the runs."""

    def __init__(self, engine: TemporalEngine, concurrency: int) -> None:
        self.engine = engine
        self.concurrency = max(1, concurrency)
        self.owner = f"{engine.services.owner} (temporal {engine.address})"
        self.executed = 0
        self._stopping = threading.Event()
        self._workers: list[Worker] = []
        self._polled: set[str] = set()
        self._launched: set[str] = set()
        self._running: Future[Any] | None = None
        self._heartbeats: Heartbeats | None = None

    def queues(self) -> list[str]:
        e = self.engine
        live = e.checkpointer.list_runs(RunFilter(statuses=_LIVE, limit=100_000))
        queues = set()
        for wf in e.registry.all():
            queues.add(e.queue(wf.name, wf.version))
            for run in live:
                if run.workflow == wf.name and wf.can_run(run.version):
                    queues.add(e.queue(run.workflow, run.version))
        return sorted(queues)

    def begin(self) -> None:
        e = self.engine

        async def build() -> None:
            client = await e.client()
            s = e.services
            binding = Binding(s.registry, s.codec, e.prefix, s.lease_seconds, e.history_events)
            activities = Activities(e.services)
            self._polled = set(self.queues())
            for q in self._polled:
                BINDINGS[q] = binding
            self._workers = [
                Worker(
                    client,
                    task_queue=q,
                    workflows=[TetherWorkflow],
                    activities=[
                        activities.claim,
                        activities.wait,
                        activities.step,
                        activities.stream,
                        activities.call,
                        activities.child,
                        activities.approval,
                        activities.finish,
                    ],
                    workflow_runner=UnsandboxedWorkflowRunner(),
                    max_concurrent_activities=4 * self.concurrency,
                    # one slot starves the sticky queue behind the normal one's long poll:
                    # each workflow task after the first waited out a 10 s timeout
                    max_concurrent_workflow_tasks=max(4, self.concurrency),
                )
                for q in sorted(self._polled)
            ]

        self.engine._call(build())
        # Temporal's activities heartbeat the run leases; these beats only record the hosts.
        self._heartbeats = Heartbeats(dataclasses.replace(e.services, owner=self.owner))

        async def run_all() -> None:
            await asyncio.gather(*(w.run() for w in self._workers))

        self._running = asyncio.run_coroutine_threadsafe(run_all(), e._loop)

    def end(self) -> None:
        async def shutdown() -> None:
            await asyncio.gather(*(w.shutdown() for w in self._workers))

        if self._running is not None:
            self.engine._call(shutdown())
            self._running = None
        if self._heartbeats is not None:
            self._heartbeats.close()
            self._heartbeats = None

    def run(self, until_idle: bool = False) -> int:
        self.begin()
        e = self.engine
        try:
            while True:
                if e.services.start is not None:  # cron ticks start runs, as local workers do
                    fire_due(e.checkpointer, e.services.start)
                mine = self._mine()
                self._launch_pending(mine)
                if until_idle and not mine:
                    break
                if self._stopping.wait(e.services.poll_interval):
                    break
        finally:
            self.end()
        return self.executed

    def _mine(self) -> list[RunRecord]:
        """Runs this worker's queues carry that are runnable or running now (a parked run
        waits for Temporal to wake it; a stranded one for a worker that has its code)."""
        e = self.engine
        active = [RunStatus.PENDING, RunStatus.RUNNING]
        runs = e.checkpointer.list_runs(RunFilter(statuses=active, limit=100_000))
        return [r for r in runs if e.queue(r.workflow, r.version) in self._polled]

    def _launch_pending(self, runs: list[RunRecord]) -> None:
        """A pending run with no Temporal execution (written by an older deploy, or by a
        process that died between recording the run and starting it) is started here, once
        per worker; starting one that has an execution is a no-op."""
        for run in runs:
            if run.status is RunStatus.PENDING and run.id not in self._launched:
                self.engine._launch(run)
                self._launched.add(run.id)

    def stop(self) -> None:
        self._stopping.set()
