"""The `temporal` engine: tether's lifecycle over a Temporal cluster.

Records: the runs index (one row per run, its status, input and output) and held events stay
in I2's tables, so `tether runs`, `status` and `send_event` without a run read and write what
they do on the local engine; each run's execution lives in Temporal's history. The engine
holds a run's I2 lease for the run's whole life (Temporal decides which worker executes it),
and the run's end is written there by an activity.

Routing and versions: a run goes to the task queue `PREFIX:name@version`. A worker polls the
queue of every version it registered and, for a version with `resumes=`, the queues of the
older versions it covers that have live runs in the index: tether's versioning rule without
`workflow.patched()` in agent code.

Temporal's client is asyncio; this engine's methods are synchronous like the rest of the
lifecycle, so it keeps one event loop on its own thread for the client and the workers.

Not yet as on the local engine: a parked run's status stays `running` in the index (sleeping
and waiting are Temporal's to know, so `tether runs` shows no wake time); schedules are fired
by local workers only; a retried or resolved run starts a new execution, whose steps, tool and
model calls return from I2's journal but whose timers and waits before the failure are waited
again; gather branches take ids in call order rather than by branch path; step arguments
over the blob threshold enter history (results do not); no continue-as-new yet; a start with a
queue, a debounce or a throttle is refused (they live in the local engine's claim and start).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, Self, TypeVar

from temporalio.client import Client, WorkflowHandle
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
from tether.foundation.engine.backends.temporal.activities import Activities, claim_for_engine
from tether.foundation.engine.backends.temporal.messages import (
    EVENT_SIGNAL,
    WORKFLOW_NAME,
    Event,
    RunArgs,
)
from tether.foundation.engine.backends.temporal.workflow import (
    BINDINGS,
    Binding,
    TetherWorkflow,
)
from tether.runtime.worker import Services
from tether.settings import Settings

T = TypeVar("T")
_LIVE = [s for s in RunStatus if s not in TERMINAL]


class TemporalEngine:
    name = "temporal"

    def __init__(self, services: Services, address: str, namespace: str, prefix: str) -> None:
        self.services = services
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

    def _handle(self, run_id: str) -> WorkflowHandle[Any, Any]:
        return self._call(self.client()).get_workflow_handle(run_id)

    def _launch(self, run: RunRecord) -> None:
        """Hold the run's lease for the engine and start its Temporal workflow."""
        args = RunArgs(
            run_id=run.id,
            workflow=run.workflow,
            version=run.version,
            input=run.input,
            token=claim_for_engine(self.services, run.id),
        )

        async def go() -> None:
            client = await self.client()
            await client.start_workflow(
                WORKFLOW_NAME,
                args,
                id=run.id,
                task_queue=self.queue(run.workflow, run.version),
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                # a retried or resolved run's previous execution has written its end and may
                # not have closed yet
                id_conflict_policy=WorkflowIDConflictPolicy.TERMINATE_EXISTING,
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

    def cancel(self, run_id: str) -> RunRecord:
        self.checkpointer.cancel(run_id)  # RunStateError if finished
        # the run and its live descendants: each execution writes its own end in the index
        tree, i = [run_id], 0
        while i < len(tree):
            live = RunFilter(parent_id=tree[i], statuses=_LIVE, limit=10_000)
            tree += [c.id for c in self.checkpointer.list_runs(live)]
            i += 1
        for rid in tree:
            self._call(self._cancel(rid))
        return self.checkpointer.get_run(run_id)

    async def _cancel(self, run_id: str) -> None:
        # already closed: its finish activity has written the index
        with contextlib.suppress(RPCError):
            await (await self.client()).get_workflow_handle(run_id).cancel()

    def retry(self, run_id: str) -> RunRecord:
        """The failed run executes again on a new Temporal execution: steps, tool and model
        calls committed in I2's journal return their results without running again, as on
        the local engine (timers and waits before the failed step are waited again)."""
        run = self.checkpointer.retry(run_id)
        self._launch(run)
        return self.checkpointer.get_run(run_id)

    def send_event(self, name: str, data: str, run_id: str | None = None) -> EventReceipt:
        payload = json.loads(data)
        if run_id is not None:
            run = self.checkpointer.get_run(run_id)
            if run.status in TERMINAL:
                raise RunStateError(f"run {run_id} is {run.status.value}; it takes no events")
            self._call(self._signal(run_id, Event(name=name, data=payload)))
            return EventReceipt(event_id=0, woken=[run_id])
        receipt = self.checkpointer.send_event(name, data)  # held in I2, as on every engine
        live = self.checkpointer.list_runs(RunFilter(statuses=_LIVE, limit=100_000))
        signalled = []
        for run in live:
            if run.meta.get("engine") == self.name:
                held = Event(name=name, data=payload, held=True)
                self._call(self._signal(run.id, held))
                signalled.append(run.id)
        return EventReceipt(event_id=receipt.event_id, woken=signalled)

    async def _signal(self, run_id: str, event: Event) -> None:
        with contextlib.suppress(RPCError):  # it finished meanwhile
            await (await self.client()).get_workflow_handle(run_id).signal(EVENT_SIGNAL, event)

    def resolve(self, run_id: str, step_id: str) -> RunRecord:
        """The run goes on from the resolved call on a new Temporal execution: what its
        journal holds returns without running again, and I1 answers the resolved call."""
        run = self.checkpointer.resolve(run_id, step_id, None)
        self._launch(run)
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
        if self._background is None:
            self._background = self.worker(8)
            self._background.begin()
        poll = self.services.poll_interval
        while True:
            run = self.checkpointer.get_run(run_id)
            if run.status in TERMINAL or stop.is_set():
                return run
            if run.status in (RunStatus.NEEDS_ATTENTION, RunStatus.PAUSED):
                return run
            stop.wait(poll)

    def close(self) -> None:
        if self._background is not None:
            self._background.end()
            self._background = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


class TemporalWorker:
    """Polls the task queues of the workflows this process registered (and the older versions
    their `resumes=` cover that have live runs)."""

    def __init__(self, engine: TemporalEngine, concurrency: int) -> None:
        self.engine = engine
        self.concurrency = max(1, concurrency)
        self.owner = f"{engine.services.owner} (temporal {engine.address})"
        self.executed = 0
        self._stopping = threading.Event()
        self._workers: list[Worker] = []
        self._running: Future[Any] | None = None

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
            binding = Binding(e.registry, e.services.codec, e.prefix, e.services.lease_seconds)
            activities = Activities(e.services)
            for q in self.queues():
                BINDINGS[q] = binding
            self._workers = [
                Worker(
                    client,
                    task_queue=q,
                    workflows=[TetherWorkflow],
                    activities=[
                        activities.step,
                        activities.call,
                        activities.child,
                        activities.finish,
                    ],
                    workflow_runner=UnsandboxedWorkflowRunner(),
                    max_concurrent_activities=4 * self.concurrency,
                    max_concurrent_workflow_tasks=self.concurrency,
                )
                for q in self.queues()
            ]

        self.engine._call(build())

        async def run_all() -> None:
            await asyncio.gather(*(w.run() for w in self._workers))

        self._running = asyncio.run_coroutine_threadsafe(run_all(), e._loop)

    def end(self) -> None:
        async def shutdown() -> None:
            await asyncio.gather(*(w.shutdown() for w in self._workers))

        if self._running is not None:
            self.engine._call(shutdown())
            self._running = None

    def run(self, until_idle: bool = False) -> int:
        self.begin()
        e = self.engine
        try:
            while not self._stopping.wait(e.services.poll_interval):
                if until_idle and not self._live():
                    break
        finally:
            self.end()
        return self.executed

    def _live(self) -> bool:
        runs = self.engine.checkpointer.list_runs(RunFilter(statuses=_LIVE, limit=100_000))
        return any(r.meta.get("engine") == self.engine.name for r in runs)

    def stop(self) -> None:
        self._stopping.set()
