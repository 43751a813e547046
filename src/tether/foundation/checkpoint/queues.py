"""Queues: limits on how many runs of a group execute at once, and in what order.

A queue is declared in code beside the workflows that use it (`@workflow(queue=Queue(...))`),
so every worker that can run those workflows imported the same limits with them. The limits
are enforced inside the checkpointer's claim, in the transaction that hands out the leases
(on PostgreSQL under an advisory lock per queue), so they hold across every worker process.

What a limit counts is runs holding a lease: status `running`. A parked run (sleeping, waiting)
holds no slot. A run whose worker died still holds its slot until its lease expires and a claim
takes it over, and that claim needs no new slot: it is the same run. So the count never
exceeds the limit, even if a frozen worker's heartbeat comes back after its lease expired.

`admit` is the one rule every store applies to its candidates, inside its own transaction.
A claim on SQL takes what its queues admit first (queue by queue, in name order), then runs in
no queue with the room left; a worker claims a queue's runs only if it declared that queue.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from tether.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class Queue:
    """At most `concurrency` runs of the queue hold a lease at once, at most `per_key` of them
    with the same concurrency key, and at most `starts` runs begin (are first claimed) in any
    `per` seconds. A limit left None does not apply. Within a queue a higher `priority` (given
    at start) is claimed first, then the oldest."""

    name: str
    concurrency: int | None = None
    per_key: int | None = None
    starts: int | None = None
    per: float = 60.0

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ConfigurationError(f"a queue needs a non-empty name, got {self.name!r}")
        for what in ("concurrency", "per_key", "starts"):
            limit = getattr(self, what)
            if limit is not None and (not isinstance(limit, int) or limit < 1):
                raise ConfigurationError(
                    f"queue {self.name!r}: {what} must be a whole number of at least 1, "
                    f"got {limit!r} (leave it out for no limit)"
                )
        if not self.per > 0:
            raise ConfigurationError(f"queue {self.name!r}: per must be above 0 s, got {self.per}")

    @property
    def limited(self) -> bool:
        """Whether a claim must count what the queue holds (and, on PostgreSQL, lock it)."""
        return self.concurrency is not None or self.per_key is not None or self.starts is not None


@dataclass(slots=True)
class Occupancy:
    """What a queue holds at the moment of a claim: leased runs by concurrency key, and runs
    first claimed inside the rate window. `admit` updates it as the claim picks runs."""

    running: Counter[str | None] = field(default_factory=Counter)
    started: int = 0

    def admit(self, queue: Queue, key: str | None, holds_slot: bool, first_start: bool) -> bool:
        """Whether a candidate may be claimed now; if so, count it. `holds_slot`: a run whose
        lease expired, already counted in `running`; `first_start`: never claimed before."""
        if holds_slot:
            return True
        if queue.concurrency is not None and self.running.total() >= queue.concurrency:
            return False
        if queue.per_key is not None and key is not None and self.running[key] >= queue.per_key:
            return False
        if first_start and queue.starts is not None and self.started >= queue.starts:
            return False
        self.running[key] += 1
        self.started += first_start
        return True

    def blocked_keys(self, queue: Queue) -> list[str]:
        """Keys at their limit: a claim need not even read their runs."""
        if queue.per_key is None:
            return []
        return [k for k, n in self.running.items() if k is not None and n >= queue.per_key]

    def full(self, queue: Queue) -> bool:
        return queue.concurrency is not None and self.running.total() >= queue.concurrency


@dataclass(frozen=True, slots=True)
class QueueState:
    """What `tether queues` shows of one queue: runs holding a lease, runs pending (waiting
    for a slot or a worker), and since when the oldest pending one has waited."""

    name: str
    running: int
    waiting: int
    oldest_wait: float | None
