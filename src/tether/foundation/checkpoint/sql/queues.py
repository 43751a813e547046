"""Queues in SQL, once for both databases: which runs of each queue a claim may take, and what
`tether queues` shows.

A claim of a limited queue first takes the queue's lock (an advisory lock on PostgreSQL; on
SQLite the claim's `BEGIN IMMEDIATE` already is one), then counts the runs holding a lease and
the starts in the rate window, then reads candidates by priority and age and admits them by
`Occupancy.admit`. The backend leases what this returns in the same transaction, so the next
claimer of the queue counts them. Only a claim raises a queue's count, and every claim of the
queue holds its lock; whatever lowers it (a park, a finish, a release, an expiry) needs none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from tether.foundation.checkpoint.queues import Occupancy, Queue, QueueState
from tether.foundation.checkpoint.sql.checkpointer import SqlCheckpointer
from tether.foundation.checkpoint.sql.dialect import Connection, Database
from tether.foundation.checkpoint.sql.rows import to_run

D = TypeVar("D", bound=Database)

# Candidates past those a claim has room for: some may be refused (a key at its limit).
_SLACK = 16


class QueueStatements:
    """The queue statements in one dialect: its placeholder, and the suffix that skips rows
    another transaction holds (PostgreSQL's `FOR UPDATE SKIP LOCKED`; nothing on SQLite)."""

    def __init__(self, placeholder: str, skip_locked: str) -> None:
        self.p, self.skip_locked = placeholder, skip_locked
        self.running = (
            "SELECT queue_key, count(*) AS n FROM runs WHERE queue = ? AND status = 'running' "
            "GROUP BY queue_key"
        ).replace("?", placeholder)
        self.started = "SELECT count(*) AS n FROM runs WHERE queue = ? AND started_at > ?".replace(
            "?", placeholder
        )

    def candidates(self, cond: str, blocked: int, slots_free: bool) -> str:
        """Runnable runs of one queue (`cond` and the queue's name), by priority then age;
        without `slots_free`, only runs whose expired lease already counts in the queue."""
        p = self.p
        where = f"{cond} AND queue = {p}"
        if not slots_free:
            where += " AND status = 'running'"
        elif blocked:
            keys = ", ".join([p] * blocked)
            where += f" AND (status = 'running' OR queue_key IS NULL OR queue_key NOT IN ({keys}))"
        return (
            f"SELECT * FROM runs WHERE {where} ORDER BY priority DESC, created_at "
            f"LIMIT {p}{self.skip_locked}"
        )

    def ready(self, cond: str, n: int) -> str:
        """Which of n queues have a runnable run: a claim locks and counts only those."""
        return (
            f"SELECT DISTINCT queue FROM runs WHERE {cond} AND queue IN ({', '.join([self.p] * n)})"
        )

    def states(self, n: int) -> str:
        return (
            "SELECT queue, "
            "SUM(CASE WHEN status = 'running' THEN 1 ELSE 0 END) AS running, "
            "SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END) AS waiting, "
            "MIN(CASE WHEN status = 'pending' THEN updated_at END) AS oldest "
            f"FROM runs WHERE queue IN ({', '.join([self.p] * n)}) "
            "AND status IN ('running', 'pending') GROUP BY queue"
        )


class SqlQueues(SqlCheckpointer[D]):
    """Picking a claim's queued runs, and the queues' states, over the shared control flow."""

    _queues: QueueStatements

    def queue_states(self, names: Sequence[str]) -> list[QueueState]:
        found: dict[str, Any] = {}
        if names:
            found = {r["queue"]: r for r in self._db.one(self._queues.states(len(names)), names)}
        return [
            QueueState(
                name=n,
                running=int(found[n]["running"]) if n in found else 0,
                waiting=int(found[n]["waiting"]) if n in found else 0,
                oldest_wait=found[n]["oldest"] if n in found else None,
            )
            for n in names
        ]

    def _pick_queued(
        self,
        c: Connection,
        queues: Sequence[Queue],
        cond: str,
        args: Sequence[Any],
        now: float,
        room: int,
    ) -> list[Any]:
        """Up to `room` rows of runnable queued runs (`cond` with `args`) that the queues'
        limits admit now, in queue name order (the order their locks are taken in). A run
        whose cancel was requested is marked cancelled instead."""
        picked: list[Any] = []
        if not queues:
            return picked
        names = [q.name for q in queues]
        ready_sql = self._queues.ready(cond, len(names))
        ready = {r["queue"] for r in c.execute(ready_sql, (*args, *names)).fetchall()}
        for queue in sorted((q for q in queues if q.name in ready), key=lambda q: q.name):
            if len(picked) >= room:
                break
            held = Occupancy()
            if queue.limited:
                self._lock_queue(c, queue.name)
                for r in c.execute(self._queues.running, (queue.name,)).fetchall():
                    held.running[r["queue_key"]] = int(r["n"])
                if queue.starts is not None:
                    started = c.execute(self._queues.started, (queue.name, now - queue.per))
                    held.started = int(started.fetchone()["n"])
            free = not held.full(queue)
            blocked = held.blocked_keys(queue) if free else []
            query = self._queues.candidates(cond, len(blocked), free)
            rows = c.execute(query, (*args, queue.name, *blocked, room - len(picked) + _SLACK))
            for row in rows.fetchall():
                if len(picked) >= room:
                    break
                if row["cancel_requested"]:
                    self._mark_cancelled(c, to_run(row), now)
                elif held.admit(
                    queue,
                    row["queue_key"],
                    holds_slot=row["status"] == "running",
                    first_start=row["started_at"] is None,
                ):
                    picked.append(row)
        return picked

    def _lock_queue(self, c: Connection, name: str) -> None:
        """Serialise the claims of one queue until commit (SQLite's writer lock already does)."""
