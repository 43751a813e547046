"""`Tether`: the Python face of the run lifecycle. The CLI and the HTTP API are thin layers
over it: start, status, list, inspect, cancel, retry, send_event, resolve, run, worker."""

from __future__ import annotations

import builtins
import json
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from tether.errors import InvalidInput, RunStateError
from tether.foundation.blobs.contract import BlobStore
from tether.foundation.checkpoint.contract import (
    TERMINAL,
    Checkpointer,
    EventReceipt,
    JournalEntry,
    NewRun,
    RunFilter,
    RunRecord,
    RunStatus,
    Schedule,
)
from tether.foundation.checkpoint.events import BUDGET_EVENT
from tether.foundation.cost.contract import CostRecord, CostTotal
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
from tether.foundation.limits.config import open_limits
from tether.foundation.loader import backend_for_url, open_backend
from tether.foundation.trace.config import open_trace_sink
from tether.foundation.trace.contract import TraceSink
from tether.runtime.foundations import Foundations
from tether.runtime.ids import new_run_id
from tether.runtime.pruning import PruneReport, prune
from tether.runtime.registry import REGISTRY, WorkflowDef
from tether.runtime.schedules import new_schedule
from tether.runtime.values import Codec
from tether.runtime.worker import Heartbeats, Services, Worker, execute_claim
from tether.settings import Settings, redact_dsn


class RunView(BaseModel):
    """Everything `tether inspect` shows about a run."""

    run: RunRecord
    journal: list[JournalEntry]
    children: list[RunRecord]
    cost: CostTotal
    calls: list[CostRecord]  # one per priced model call, by step id


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
        self.services = Services(
            checkpointer=checkpointer,
            registry=self.registry,
            codec=self.codec,
            sink=sink,
            lease_seconds=self.settings.lease_seconds,
            poll_interval=self.settings.poll_interval,
            foundations=self.foundations,
            start=lambda workflow, input, key: self.start(workflow, input, key=key),
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
    ) -> str:
        """Validate the input and write one pending run; returns its id. With a key already
        used, returns that run's id and starts nothing. Who starts it (an `identity`, or a
        `token` that I8 verifies first: IdentityError if it is bad, expired or for another
        audience) is recorded with the run; I9's rules see it on every call."""
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
        run, _ = self.checkpointer.create_run(
            NewRun(
                id=new_run_id(),
                workflow=wf.name,
                version=wf.version,
                input=self.codec.encode(value, wf.input_adapter),
                key=key,
                meta={"identity": identity.model_dump(mode="json")} if identity else {},
            )
        )
        return run.id

    def status(self, run_id: str) -> RunRecord:
        return self.checkpointer.get_run(run_id)

    def journal(self, run_id: str) -> list[JournalEntry]:
        self.checkpointer.get_run(run_id)
        return self.checkpointer.journal(run_id)

    def list(
        self,
        statuses: list[RunStatus] | None = None,
        workflow: str | None = None,
        limit: int = 100,
        stranded: bool = False,
    ) -> list[RunRecord]:
        """Runs, newest first. `stranded`: non-terminal runs no registered version can run."""
        if stranded:
            live = [s for s in RunStatus if s not in TERMINAL]
            runs = self.checkpointer.list_runs(
                RunFilter(statuses=live, workflow=workflow, limit=100_000)
            )
            return [r for r in runs if self.registry.for_run(r.workflow, r.version) is None][:limit]
        return self.checkpointer.list_runs(
            RunFilter(statuses=statuses or [], workflow=workflow, limit=limit)
        )

    def inspect(self, run_id: str) -> RunView:
        run = self.checkpointer.get_run(run_id)
        return RunView(
            run=run,
            journal=self.checkpointer.journal(run_id),
            children=self.checkpointer.list_runs(RunFilter(parent_id=run_id, limit=10_000)),
            cost=self.foundations.cost.run_total(run_id),
            calls=self.foundations.cost.calls(run_id),
        )

    def cancel(self, run_id: str) -> RunRecord:
        return self.checkpointer.cancel(run_id)

    def retry(self, run_id: str) -> RunRecord:
        return self.checkpointer.retry(run_id)

    def send_event(
        self, name: str, data: dict[str, Any] | None = None, run: str | None = None
    ) -> EventReceipt:
        if data is not None and not isinstance(data, dict):
            raise InvalidInput(f"data for event {name!r}", "event data must be a JSON object")
        return self.checkpointer.send_event(name, json.dumps(data or {}), run_id=run)

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
        run = self.checkpointer.get_run(run_id)
        if run.status is not RunStatus.NEEDS_ATTENTION:
            raise RunStateError(
                f"run {run_id} is {run.status.value}; only a needs_attention run can be resolved"
            )
        decision = "rerun" if rerun else "skip" if skip else "result"
        self.foundations.tools.resolve(run_id, step_id, decision, result)
        return self.checkpointer.resolve(run_id, step_id, None)

    def issue_token(
        self,
        subject: str,
        roles: builtins.list[str] | None = None,
        ttl_seconds: float | None = None,
    ) -> str:
        """A signed I8 token for a caller (the key comes from I7, `TETHER_JWT_KEY` by default)."""
        return self.foundations.identity.issue(subject, roles=roles or (), ttl_seconds=ttl_seconds)

    def raise_budget(self, run_id: str, usd: float) -> RunRecord:
        """Add `usd` to the run's cost cap; a run paused at its cap wakes and goes on."""
        run = self.checkpointer.get_run(run_id)
        if run.status in TERMINAL:
            raise RunStateError(f"run {run_id} is {run.status.value}; its budget no longer matters")
        open_limits(self.settings).raise_budget(run_id, usd)
        if run.status is RunStatus.PAUSED:
            self.checkpointer.send_event(BUDGET_EVENT, json.dumps({"run_id": run_id}), run_id)
        return self.checkpointer.get_run(run_id)

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

    def prune(self, finished_before: float) -> PruneReport:
        """Remove runs that finished before the time, their tool-call rows and the blobs no
        interface refers to any more; report what was freed."""
        tools = self.foundations.tools.store
        return prune(
            self.checkpointer,
            tools.forget,
            [self.checkpointer.blob_refs, tools.blob_refs],
            self.blobs,
            finished_before,
        )

    def output(self, run: RunRecord) -> Any:
        """The run's output as plain JSON data (blobs fetched)."""
        return None if run.output is None else json.loads(self.codec.resolve(run.output))

    # -- execution --------------------------------------------------------------------------

    def worker(self, concurrency: int = 1) -> Worker:
        return Worker(self.services, concurrency)

    def run(
        self,
        run_id: str,
        stop: threading.Event | None = None,
        on_wait: Callable[[RunRecord], None] | None = None,
    ) -> RunRecord:
        """Execute the run in this process until it finishes, waiting through its sleeps and
        event waits. If a worker holds it, follow it instead. `stop` detaches: the run is
        released at its next primitive and goes on elsewhere. Returns the run as it stands."""
        stop = stop or threading.Event()
        s = self.services
        heartbeats = Heartbeats(s)
        try:
            while True:
                run = self.checkpointer.get_run(run_id)
                if run.status in TERMINAL or stop.is_set():
                    return run
                if run.status in (RunStatus.NEEDS_ATTENTION, RunStatus.PAUSED):
                    return run
                if self.registry.for_run(run.workflow, run.version) is None:
                    raise RunStateError(
                        f"run {run_id} is pinned to {run.workflow_id}, which this process has "
                        "not registered; start a worker that has it"
                    )
                if self._execute_tree(run_id, stop, heartbeats):
                    continue
                if on_wait is not None:
                    on_wait(run)
                # re-read at least every poll: an event or a child can wake it before wake_at
                due = (run.wake_at or math.inf) - time.time()
                stop.wait(max(0.0, min(due, s.poll_interval)))
        finally:
            heartbeats.close()

    def _execute_tree(self, run_id: str, stop: threading.Event, heartbeats: Heartbeats) -> bool:
        """Execute whatever of the run and its descendants is runnable now: with no worker
        about, `run` must also drive the children its run invoked. True if anything ran."""
        s, accepts = self.services, self.registry.accepts()
        pending, ran = [run_id], False
        while pending:
            rid = pending.pop()
            for claim in self.checkpointer.claim(s.owner, accepts, 1, s.lease_seconds, run_id=rid):
                execute_claim(s, claim, stop, heartbeats)
                ran = True
            live = [st for st in RunStatus if st not in TERMINAL]
            children = RunFilter(parent_id=rid, statuses=live, limit=10_000)
            pending += [c.id for c in self.checkpointer.list_runs(children)]
        return ran

    def close(self) -> None:
        self.foundations.close()
        self.sink.close()
        self.checkpointer.close()

    def __enter__(self) -> Tether:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
