"""Which queue a new run goes in, with which concurrency key and priority: one rule for a run
started through `Tether.start` and a child started by `ctx.invoke`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tether.errors import InvalidInput
from tether.foundation.checkpoint.queues import Queue
from tether.runtime.registry import Registry, WorkflowDef


@dataclass(frozen=True, slots=True)
class Placement:
    queue: str | None = None
    key: str | None = None
    priority: int = 0


def place(
    registry: Registry,
    wf: WorkflowDef,
    value: Any,
    queue: Queue | str | None = None,
    concurrency_key: str | None = None,
    priority: int = 0,
) -> Placement:
    """The queue given at start, else the workflow's; the key given, else the workflow's
    `concurrency_key` of the input. A Queue given here is declared in this process (workers
    must declare it too, beside the workflow, to claim its runs)."""
    if isinstance(queue, Queue):
        registry.add_queue(queue)
        queue = queue.name
    elif queue is not None:
        registry.queue(queue)  # ConfigurationError if it is not declared here
    name = queue or wf.queue_name
    if name is None:
        if concurrency_key is not None or priority:
            raise InvalidInput(
                f"start of {wf.id}",
                "concurrency_key and priority order runs within a queue; give queue= too",
            )
        return Placement()
    if not isinstance(priority, int):
        raise InvalidInput(f"start of {wf.id}", f"priority must be an int, got {priority!r}")
    if concurrency_key is None and wf.concurrency_key is not None and name == wf.queue_name:
        concurrency_key = str(wf.concurrency_key(value))
    return Placement(name, concurrency_key, priority)
