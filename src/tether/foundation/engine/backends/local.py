"""The `local` engine: tether's own durable step runtime (`tether.runtime`), run by its
workers over I2's tables. Behaviour is the runtime's, unchanged; this module only puts it
behind the I3 contract.

Where it lives: an engine backend is the one kind of backend that sits *above* the runtime
(it executes workflows; every other interface is called by them), so it must import
`tether.runtime`, which the contract "foundation/ is below the runtime" forbids to
`tether.foundation`. It stays here, beside the Temporal backend, where DESIGN.md's layout and
the loader put every backend, and pyproject's `ignore_imports` names exactly this exception:
`tether.foundation.engine.backends.**` may import `tether.runtime`. The contract
(`foundation/engine/contract.py`) imports no runtime, so the client and the CLI see only I3.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any, Self

from tether.errors import ConfigurationError, RunStateError
from tether.foundation.checkpoint.contract import (
    TERMINAL,
    EventReceipt,
    JournalEntry,
    NewRun,
    RunFilter,
    RunRecord,
    RunStatus,
)
from tether.runtime.worker import Heartbeats, Services, Worker, execute_claim
from tether.settings import Settings


class LocalEngine:
    """Every record in I2's tables; runs claimed under leases by `tether worker`s."""

    name = "local"

    def __init__(self, services: Services) -> None:
        self.services = services
        self.checkpointer = services.checkpointer
        self.registry = services.registry

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> Self:
        services = options.pop("services", None)
        if not isinstance(services, Services):
            raise ConfigurationError("the local engine is built by Tether, with its services")
        if options:
            raise TypeError(f"unexpected options {sorted(options)}")
        return cls(services)

    # -- records ----------------------------------------------------------------------------

    def start(self, new: NewRun) -> RunRecord:
        run, _ = self.checkpointer.create_run(new)
        return run

    def status(self, run_id: str) -> RunRecord:
        return self.checkpointer.get_run(run_id)

    def list_runs(self, filter: RunFilter) -> list[RunRecord]:
        return self.checkpointer.list_runs(filter)

    def journal(self, run_id: str) -> list[JournalEntry]:
        return self.checkpointer.journal(run_id)

    def cancel(self, run_id: str) -> RunRecord:
        return self.checkpointer.cancel(run_id)

    def retry(self, run_id: str) -> RunRecord:
        return self.checkpointer.retry(run_id)

    def send_event(self, name: str, data: str, run_id: str | None = None) -> EventReceipt:
        return self.checkpointer.send_event(name, data, run_id=run_id)

    def resolve(self, run_id: str, step_id: str) -> RunRecord:
        return self.checkpointer.resolve(run_id, step_id, None)

    # -- execution --------------------------------------------------------------------------

    def worker(self, concurrency: int = 1) -> Worker:
        return Worker(self.services, concurrency)

    def run(
        self,
        run_id: str,
        stop: threading.Event,
        on_wait: Callable[[RunRecord], None] | None = None,
    ) -> RunRecord:
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
                ran, paused = self._execute_tree(run_id, stop, heartbeats)
                if ran:
                    continue
                if paused:  # the tree waits for a person to raise its budget
                    return run
                if on_wait is not None:
                    on_wait(run)
                # re-read at least every poll: an event or a child can wake it before wake_at
                due = (run.wake_at or math.inf) - time.time()
                stop.wait(max(0.0, min(due, s.poll_interval)))
        finally:
            heartbeats.close()

    def _execute_tree(
        self, run_id: str, stop: threading.Event, heartbeats: Heartbeats
    ) -> tuple[bool, bool]:
        """Execute whatever of the run and its descendants is runnable now: with no worker
        about, `run` must also drive the children its run invoked. Whether anything ran, and
        whether a descendant is paused at its budget."""
        s, accepts, queues = self.services, self.registry.accepts(), self.registry.queues()
        pending, ran, paused = [run_id], False, False
        while pending:
            rid = pending.pop()
            claims = self.checkpointer.claim(
                s.owner, accepts, 1, s.lease_seconds, run_id=rid, queues=queues
            )
            for claim in claims:
                execute_claim(s, claim, stop, heartbeats)
                ran = True
            live = [st for st in RunStatus if st not in TERMINAL]
            children = self.checkpointer.list_runs(
                RunFilter(parent_id=rid, statuses=live, limit=10_000)
            )
            paused = paused or any(c.status is RunStatus.PAUSED for c in children)
            pending += [c.id for c in children]
        return ran, paused

    def close(self) -> None:
        """The checkpointer belongs to the client, which closes it."""
