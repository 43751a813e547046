"""Which workers are alive and what they host, in SQL for both databases: the rows the
stranded filter (`Dialect.stranded`, used by `list_runs`) and `resumers` read.

A worker upserts one row per version glob it can run (its version, then each of `resumes=`)
with an expiry on the database's clock, every heartbeat. Rows outlive their worker on purpose:
an expired row still tells a person which version would resume a stranded run, until the
event retention has passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from tether.foundation.checkpoint.contract import Hosted, Resumer
from tether.foundation.checkpoint.sql.checkpointer import SqlCheckpointer
from tether.foundation.checkpoint.sql.dialect import Connection, Database
from tether.foundation.checkpoint.versions import highest_first

D = TypeVar("D", bound=Database)


class SqlWorkers(SqlCheckpointer[D]):
    """`record_worker` and `resumers` over the shared control flow."""

    def record_worker(self, owner: str, hosts: Sequence[Hosted], ttl_seconds: float) -> None:
        rows = [
            (owner, h.workflow, h.version, self._sql.pattern(glob), ttl_seconds)
            for h in hosts
            for glob in (h.version, *h.resumes)
        ]

        def record(c: Connection) -> None:
            c.execute(self._sql.prune_hosts, (self._retention,))
            if rows:
                c.cursor().executemany(self._sql.upsert_host, rows)

        self._db.tx(record)

    def resumers(self, run_ids: Sequence[str]) -> dict[str, list[Resumer]]:
        found: dict[str, list[Resumer]] = {run_id: [] for run_id in run_ids}
        if not run_ids:
            return found
        marks = ", ".join([self._sql.placeholder] * len(run_ids))
        for row in self._db.one(self._sql.resumers.format(ids=marks), tuple(run_ids)):
            found[row["run_id"]].append(Resumer(version=row["version"], live=bool(row["live"])))
        return {run_id: highest_first(r) for run_id, r in found.items()}
