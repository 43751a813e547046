"""`Tether`: the Python face of the run lifecycle. The CLI and the HTTP API are thin layers
over it: start, status, list, inspect, cancel, retry, send_event, resolve, run, worker. Each
goes through the configured I3 engine (settings `engine`: `local`, `temporal`), so nothing
here knows which engine executes the runs."""

from __future__ import annotations

import builtins
import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from pydantic import BaseModel, ValidationError

from tether.errors import InvalidInput, RunStateError
from tether.foundation.blobs.contract import BlobStore
from tether.foundation.checkpoint.contract import (
    TERMINAL,
    Checkpointer,
    EntryKind,
    EventReceipt,
    JournalEntry,
    NewRun,
    RunFilter,
    RunRecord,
    RunStatus,
    Schedule,
    StreamItem,
    Wait,
)
from tether.foundation.checkpoint.events import BUDGET_EVENT
from tether.foundation.checkpoint.queues import Queue, QueueState
from tether.foundation.checkpoint.starts import Debounce, Throttle
from tether.foundation.cost.contract import CostRecord, CostTotal
from tether.foundation.engine.contract import EngineWorker, WorkflowEngine
from tether.foundation.hitl.contract import (
    APPROVAL_EVENT,
    AlreadyDecided,
    ApprovalRequest,
    Approver,
    Decision,
    RequestState,
    Verdict,
)
from tether.foundation.identity.contract import Identity
from tether.foundation.limits.contract import RunBudget
from tether.foundation.loader import backend_for_url, open_backend
from tether.foundation.tools.results import ToolCallRecord
from tether.foundation.trace.config import open_trace_sink
from tether.foundation.trace.contract import TraceSink
from tether.runtime.forks import ForkPlan, check_forkable, forked_entries, plan_fork
from tether.runtime.foundations import Foundations
from tether.runtime.ids import new_run_id
from tether.runtime.pruning import PruneReport, prune
from tether.runtime.queues import place
from tether.runtime.registry import REGISTRY, WorkflowDef
from tether.runtime.schedules import new_schedule
from tether.runtime.values import Codec
from tether.runtime.worker import Services
from tether.settings import Settings, redact_dsn

_STREAM_POLL_FLOOR = 0.01  # seconds a follower waits at least between two empty reads


class RunView(BaseModel):
    """Everything `tether inspect` shows about a run."""

    run: RunRecord
    journal: list[JournalEntry]
    children: list[RunRecord]
    cost: CostTotal
    calls: list[CostRecord]  # one per priced model call, by step id
    root_id: str = ""  # the root of the run's tree, whose budget it spends from
    tree: RunBudget | None = None  # the tree's spend so far (I10's counters), own calls included
    interrupted: ToolCallRecord | None = None  # the tool call a needs_attention run is parked on


class Tether:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        checkpointer: Checkpointer | None = None,
        sink: TraceSink | None = None,
        foundations: Foundations | None = None,
    ) -> None:
        """`foundations` replaces the interfaces behind tools and models built from settings
        (an eval serves tools from fixtures this way)."""
        self.settings = settings or Settings()
        self.settings.ensure_data_dir()
        REGISTRY.load_modules(self.settings.workflows)
        self.registry = REGISTRY
        if checkpointer is None:
            name = self.settings.checkpoint or backend_for_url(
                "checkpoint", self.settings.database_url_for("checkpoint")
            )
            checkpointer = open_backend("checkpoint", name, Checkpointer, self.settings)
        if sink is None:
            sink = open_trace_sink(self.settings)
        self.checkpointer: Checkpointer = checkpointer
        self.sink: TraceSink = sink
        self.blobs = blobs = open_backend("blobs", self.settings.blobs, BlobStore, self.settings)
        self.codec = Codec(blobs, self.settings.blob_threshold)
        self.foundations = foundations or Foundations(self.settings, blobs)
        # What each run executed in this process last parked on (for `run --wait`'s view)
        self.parked_on: dict[str, builtins.list[Wait]] = {}
        self.services = Services(
            checkpointer=checkpointer,
            registry=self.registry,
            codec=self.codec,
            sink=sink,
            lease_seconds=self.settings.lease_seconds,
            poll_interval=self.settings.poll_interval,
            foundations=self.foundations,
            start=lambda workflow, input, key: self.start(workflow, input, key=key),
            on_park=self.parked_on.__setitem__,
        )
        self.engine: WorkflowEngine = open_backend(
            "engine", self.settings.engine, WorkflowEngine, self.settings, services=self.services
        )

    @classmethod
    def from_env(cls) -> Tether:
        return cls(Settings())

    @property
    def database(self) -> str:
        """Which database (and PostgreSQL schema) this instance uses, safe to print."""
        if self.settings.checkpoint == "memory":
            return "memory"
        where = redact_dsn(self.settings.database_url_for("checkpoint"))
        schema = getattr(self.checkpointer, "schema", None)
        return f"{where} (schema {schema})" if schema else where

    # -- lifecycle --------------------------------------------------------------------------

    def start(
        self,
        workflow: WorkflowDef | str,
        input: BaseModel | dict[str, Any] | str,
        key: str | None = None,
        identity: Identity | None = None,
        token: str | None = None,
        *,
        queue: Queue | str | None = None,
        concurrency_key: str | None = None,
        priority: int = 0,
        debounce: Debounce | None = None,
        throttle: Throttle | None = None,
    ) -> str:
        """Validate the input and write one pending run; returns its id. With a key already
        used, returns that run's id and starts nothing. Who starts it (an `identity`, or a
        `token` that I8 verifies first: IdentityError if it is bad, expired or for another
        audience) is recorded with the run; I9's rules see it on every call. The run goes in
        `queue` (else its workflow's), keyed by `concurrency_key` (else the workflow's key of
        the input); a higher `priority` is claimed before older runs of its queue.

        With `debounce`, a burst of starts with one key (per workflow) makes one run: the id
        returned is that pending run's, which waits until `period` after the last start and
        runs with its input. With `throttle`, at most `starts` runs (of the workflow, or of its
        key) start in any `per` seconds; a start past that is pending until its turn."""
        if token is not None:
            identity = self.foundations.identity.verify(token)
        wf = workflow if isinstance(workflow, WorkflowDef) else self.registry.get(workflow)
        try:
            if isinstance(input, str):
                value = wf.input_adapter.validate_json(input)
            else:
                value = wf.input_adapter.validate_python(input)
        except ValidationError as e:
            errors = [dict(err) for err in e.errors(include_url=False)]
            raise InvalidInput(f"input for {wf.id}", errors) from None
        placed = place(self.registry, wf, value, queue, concurrency_key, priority)
        run = self.engine.start(
            NewRun(
                id=new_run_id(),
                workflow=wf.name,
                version=wf.version,
                input=self.codec.encode(value, wf.input_adapter),
                key=key,
                meta={"identity": identity.model_dump(mode="json")} if identity else {},
                queue=placed.queue,
                queue_key=placed.key,
                priority=placed.priority,
                debounce=debounce and replace(debounce, key=f"{wf.name}:{debounce.key}"),
                throttle=throttle and replace(throttle, key=f"{wf.name}:{throttle.key}"),
            )
        )
        return run.id

    def status(self, run_id: str) -> RunRecord:
        return self.engine.status(run_id)

    def journal(self, run_id: str) -> list[JournalEntry]:
        self.engine.status(run_id)
        return self.engine.journal(run_id)

    def list(
        self,
        statuses: list[RunStatus] | None = None,
        workflow: str | None = None,
        limit: int = 100,
        stranded: bool = False,
        created_after: float | None = None,
    ) -> list[RunRecord]:
        """Runs, newest first. `stranded`: unfinished runs no live worker can run, from the
        versions workers record with their heartbeats (not from this process's registry)."""
        return self.engine.list_runs(
            RunFilter(
                statuses=statuses or [],
                workflow=workflow,
                limit=limit,
                stranded=stranded,
                created_after=created_after,
            )
        )

    def inspect(self, run_id: str) -> RunView:
        run = self.engine.status(run_id)
        return RunView(
            run=run,
            journal=self.engine.journal(run_id),
            children=self.engine.list_runs(RunFilter(parent_id=run_id, limit=10_000)),
            cost=self.foundations.cost.run_total(run_id),
            calls=self.foundations.cost.calls(run_id),
            root_id=self._root_of(run),
            tree=self.foundations.limits.store.budget(self._root_of(run)),
            interrupted=self._interrupted(run),
        )

    def _interrupted(self, run: RunRecord) -> ToolCallRecord | None:
        """I1's row for the call a person must decide on: the journal has no entry for it."""
        if run.status is not RunStatus.NEEDS_ATTENTION or run.failed_step is None:
            return None
        return self.foundations.tools.lookup(run.id, run.failed_step)

    @staticmethod
    def _root_of(run: RunRecord) -> str:
        root: str = run.meta.get("root_id") or run.id
        return root

    def stream(
        self, run_id: str, key: str, offset: int = 0, *, follow: bool = True
    ) -> Iterator[StreamItem]:
        """The values of the run's stream `key` from `offset` on, each once and in order (its
        `value` JSON text). With `follow`, waits for more as the run writes them (woken by the
        database's change signal, as workers are) and ends when the run has ended; a reader
        that reconnects from the next offset it had not seen misses nothing and sees nothing
        twice. RunNotFound for an unknown run."""
        if not isinstance(key, str) or not key:
            raise TypeError(f"a stream key is a non-empty string, not {key!r}")
        while True:
            page = self.checkpointer.read_stream(run_id, key, offset)
            for item in page.items:
                yield replace(item, value=self.codec.resolve(item.value))
            if page.items:
                offset = page.items[-1].offset + 1
                continue
            if page.closed or not follow:
                return
            started = time.monotonic()
            self.checkpointer.wait_for_work(self.settings.poll_interval)
            if time.monotonic() - started < _STREAM_POLL_FLOOR:
                time.sleep(_STREAM_POLL_FLOOR)  # a due timer no worker claims yet wakes at once

    def cancel(self, run_id: str) -> RunRecord:
        return self.engine.cancel(run_id)

    def queues(self) -> builtins.list[tuple[Queue, QueueState]]:
        """Each queue declared in this process, with its runs holding a lease, its runs
        pending, and the oldest pending one's wait (`tether queues`)."""
        declared = self.registry.queues()
        states = self.checkpointer.queue_states([q.name for q in declared])
        return list(zip(declared, states, strict=True))

    def plan_fork(self, run_id: str, step_id: str, cancel_original: bool = False) -> ForkPlan:
        """What `fork` would keep and call again; RunStateError if it would be refused."""
        run = self.checkpointer.get_run(run_id)
        check_forkable(run, cancel_original)
        return plan_fork(run, self.checkpointer.journal(run_id), step_id)

    def fork(
        self,
        run_id: str,
        step_id: str,
        *,
        version: str | None = None,
        cancel_original: bool = False,
    ) -> str:
        """A new run of the run's workflow (or `version` of it) that replays every journal
        entry finished before `step_id`, with I1's rows of the tool calls among them, and runs
        on from there; returns its id. The old run is
        left as it is (cancelled first with `cancel_original`, which a live run needs)."""
        plan = self.plan_fork(run_id, step_id, cancel_original)
        old = plan.run
        if version is not None and version != old.version:
            self.registry.get(f"{old.workflow}@{version}")  # WorkflowNotFound if not here
        if cancel_original and old.status not in TERMINAL:
            self.checkpointer.cancel(run_id)
        new_id = new_run_id()
        # I1's rows first: when the fork becomes claimable its kept calls are already there
        calls = [e.step_id for e in plan.kept if e.kind is EntryKind.TOOL]
        self.foundations.tools.store.copy_calls(run_id, new_id, calls)
        self.checkpointer.fork_run(
            NewRun(
                id=new_id,
                workflow=old.workflow,
                version=version or old.version,
                input=old.input,
                meta={**old.meta, "forked_from": {"run": run_id, "step": step_id}},
                queue=old.queue,
                queue_key=old.queue_key,
                priority=old.priority,
            ),
            forked_entries(plan, new_id),
        )
        return new_id

    def retry(self, run_id: str) -> RunRecord:
        return self.engine.retry(run_id)

    def send_event(
        self, name: str, data: dict[str, Any] | None = None, run: str | None = None
    ) -> EventReceipt:
        if not name.strip():
            raise InvalidInput("event name", "an event name must be non-blank, e.g. 'approved'")
        if data is not None and not isinstance(data, dict):
            raise InvalidInput(f"data for event {name!r}", "event data must be a JSON object")
        return self.engine.send_event(name, json.dumps(data or {}), run_id=run)

    def approvals(
        self, *, state: RequestState | str | None = None, run_id: str | None = None
    ) -> builtins.list[ApprovalRequest]:
        """I6's approval requests, oldest first: all, or those in `state` / of `run_id`."""
        return self.foundations.hitl.list(
            state=None if state is None else RequestState(state), run_id=run_id
        )

    def approval(self, request_id: str) -> ApprovalRequest:
        """One request with its full decision history (UnknownApproval if there is none)."""
        return self.foundations.hitl.get(request_id)

    def decide(
        self,
        request_id: str,
        verdict: Verdict | str,
        *,
        token: str | None = None,
        identity: Identity | None = None,
        reason: str | None = None,
        args: dict[str, Any] | None = None,
    ) -> Decision:
        """Decide an approval request as the approver a `token` (verified by I8) or an
        `identity` names, then wake the run that asked. `args` (with verdict 'edited') are the
        edited arguments the run will use. NotAnApprover, AlreadyDecided (naming who won) or
        UnknownApproval change nothing."""
        if token is not None:
            identity = self.foundations.identity.verify(token)
        if identity is None:
            raise InvalidInput("decision", "who decides is required: give a token or identity")
        approver = Approver(subject=identity.subject, roles=tuple(identity.roles))
        hitl = self.foundations.hitl
        try:
            decision = hitl.decide(request_id, Verdict(verdict), approver, reason=reason, args=args)
        except AlreadyDecided as e:
            # the winner's wake-up may have been lost (a crash between its decision and its
            # event): send it again, so any later attempt heals that; the refusal stands
            if e.winner is not None:
                self._wake(e.request.run_id, e.winner)
            raise
        self._wake(hitl.get(request_id).run_id, decision)
        return decision

    def _wake(self, run_id: str, decision: Decision) -> None:
        data = {"request_id": decision.request_id, "decision": decision.model_dump(mode="json")}
        self.send_event(APPROVAL_EVENT, data, run=run_id)

    def resolve(
        self,
        run_id: str,
        step_id: str,
        *,
        result: Any = None,
        skip: bool = False,
        rerun: bool = False,
    ) -> RunRecord:
        """A person's decision on a run parked as needs_attention by an interrupted
        unsafe_on_replay tool call: take `result` as the call's result, `skip` it (result
        None), or `rerun` it once more. The run then resumes from that step."""
        if [result is not None, skip, rerun].count(True) != 1:
            raise InvalidInput("resolve", "give exactly one of --result, --skip or --rerun")
        run = self.engine.status(run_id)
        if run.status is not RunStatus.NEEDS_ATTENTION:
            raise RunStateError(
                f"run {run_id} is {run.status.value}; only a needs_attention run can be resolved"
            )
        decision = "rerun" if rerun else "skip" if skip else "result"
        self.foundations.tools.resolve(run_id, step_id, decision, result)
        return self.engine.resolve(run_id, step_id)

    def issue_token(
        self,
        subject: str,
        roles: builtins.list[str] | None = None,
        ttl_seconds: float | None = None,
    ) -> str:
        """A signed I8 token for a caller (the key comes from I7, `TETHER_JWT_KEY` by default)."""
        return self.foundations.identity.issue(subject, roles=roles or (), ttl_seconds=ttl_seconds)

    def raise_budget(self, run_id: str, usd: float) -> RunRecord:
        """Add `usd` to the cost cap of the run's tree (the budget is its root's, whichever run
        of the tree is named); every run of the tree paused at the cap wakes and goes on."""
        if not math.isfinite(usd) or usd <= 0:
            raise InvalidInput("budget raise", f"--usd must be a finite positive amount, not {usd}")
        run = self.engine.status(run_id)
        root = self.engine.status(self._root_of(run))
        if root.status in TERMINAL:
            raise RunStateError(
                f"run {root.id} is {root.status.value}; its tree's budget no longer matters"
            )
        self.foundations.limits.raise_budget(root.id, usd)
        # To every run waiting on it now: the paused runs of the tree (old pauses match run_id)
        self.engine.send_event(BUDGET_EVENT, json.dumps({"run_id": root.id, "root_id": root.id}))
        return self.engine.status(run_id)

    def add_schedule(
        self,
        name: str,
        cron: str,
        workflow: str,
        input: dict[str, Any] | None = None,
        catchup: str = "skip",
    ) -> Schedule:
        """Start `workflow` on every cron tick (workers fire it; each tick once)."""
        wf = self.registry.get(workflow)
        data = json.dumps(input or {})
        try:
            wf.input_adapter.validate_json(data)
        except ValidationError as e:
            errors = [dict(err) for err in e.errors(include_url=False)]
            raise InvalidInput(f"input for scheduled {wf.id}", errors) from None
        schedule = new_schedule(name, cron, workflow, data, catchup)
        self.checkpointer.put_schedule(schedule)
        return schedule

    def schedules(self) -> builtins.list[Schedule]:
        return self.checkpointer.schedules()

    def costs(self, run_ids: builtins.list[str]) -> dict[str, CostTotal]:
        """Each run's model-call roll-up, in one query (for `tether runs`)."""
        return self.foundations.cost.run_totals(run_ids)

    def workflow_costs(self, workflow_ids: builtins.list[str]) -> dict[str, CostTotal]:
        """All-time model-call roll-up per `name@version` (every run, not only those listed)."""
        cost = self.foundations.cost
        return {wid: cost.workflow_total(wid) for wid in sorted(set(workflow_ids))}

    def remove_schedule(self, name: str) -> None:
        if not self.checkpointer.delete_schedule(name):
            raise InvalidInput("schedule", f"no schedule named {name!r}")

    def prune(self, finished_before: float, keep_thread_checkpoints: int = 10) -> PruneReport:
        """Remove runs that finished before the time, their tool-call rows and the blobs no
        interface refers to any more, and each LangGraph thread's checkpoints but its newest
        `keep_thread_checkpoints` per namespace; report what was freed."""
        tools = self.foundations.tools.store
        return prune(
            self.checkpointer,
            tools.forget,
            [self.checkpointer.blob_refs, tools.blob_refs],
            self.blobs,
            finished_before,
            keep_thread_checkpoints,
        )

    def output(self, run: RunRecord) -> Any:
        """The run's output as plain JSON data (blobs fetched)."""
        return None if run.output is None else json.loads(self.codec.resolve(run.output))

    # -- execution --------------------------------------------------------------------------

    def check_tools(self) -> None:
        """Build I1 now, so a lane mapping its backend cannot serve (or a backend that is not
        installed) is one ConfigurationError before any run starts, not at a first call. A
        worker, `run` (`tether run --wait`) and `tether serve` call it."""
        self.foundations.tools  # noqa: B018  (building the runner checks every mapping)

    def worker(self, concurrency: int = 1) -> EngineWorker:
        self.check_tools()
        return self.engine.worker(concurrency)

    def run(
        self,
        run_id: str,
        stop: threading.Event | None = None,
        on_wait: Callable[[RunRecord], None] | None = None,
    ) -> RunRecord:
        """Execute the run in this process until it finishes, waiting through its sleeps and
        event waits. If a worker holds it, follow it instead. `stop` detaches: the run is
        released at its next primitive and goes on elsewhere. Returns the run as it stands."""
        self.check_tools()
        return self.engine.run(run_id, stop or threading.Event(), on_wait)

    def close(self) -> None:
        self.engine.close()
        self.foundations.close()
        self.sink.close()
        self.checkpointer.close()

    def __enter__(self) -> Tether:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
