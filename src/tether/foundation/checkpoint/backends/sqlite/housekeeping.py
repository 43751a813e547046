"""Prune, blob references and schedules on SQLite: the I2 methods outside a run's execution."""

from __future__ import annotations

import time

from tether.foundation.checkpoint.backends.sqlite.connection import SqliteConnections
from tether.foundation.checkpoint.contract import BLOB_REF, Pruned, Schedule, blob_address


class SqliteHousekeeping(SqliteConnections):
    def prune(self, finished_before: float) -> Pruned:
        with self._tx() as c:
            ids = [
                r[0]
                for r in c.execute(
                    "SELECT id FROM runs WHERE status IN ('completed', 'failed', 'cancelled') "
                    "AND updated_at < ?",
                    (finished_before,),
                )
            ]
            entries = 0
            for chunk in (ids[i : i + 500] for i in range(0, len(ids), 500)):
                marks = ",".join("?" * len(chunk))
                entries += c.execute(
                    f"DELETE FROM journal WHERE run_id IN ({marks})", chunk
                ).rowcount
                c.execute(f"DELETE FROM waits WHERE run_id IN ({marks})", chunk)
                c.execute(f"DELETE FROM runs WHERE id IN ({marks})", chunk)
            events = c.execute(
                "DELETE FROM events WHERE created_at < ?", (time.time() - self._retention,)
            ).rowcount
        return Pruned(run_ids=ids, entries=entries, events=events)

    def blob_refs(self) -> set[str]:
        like = BLOB_REF + "%"
        with self._errors():
            conn = self._conn()
            texts = [
                r[0]
                for r in conn.execute(
                    "SELECT input FROM runs WHERE input LIKE ? UNION ALL "
                    "SELECT output FROM runs WHERE output LIKE ? UNION ALL "
                    "SELECT value FROM journal WHERE value LIKE ? UNION ALL "
                    "SELECT input FROM journal WHERE input LIKE ?",
                    (like,) * 4,
                )
            ]
        return {a for t in texts if (a := blob_address(t))}

    # -- schedules ----------------------------------------------------------------------

    def put_schedule(self, schedule: Schedule) -> None:
        with self._tx() as c:
            c.execute(
                "INSERT OR REPLACE INTO schedules (name, cron, workflow, input, catchup, next_at, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    schedule.name,
                    schedule.cron,
                    schedule.workflow,
                    schedule.input,
                    schedule.catchup,
                    schedule.next_at,
                    schedule.created_at,
                ),
            )

    def schedules(self) -> list[Schedule]:
        with self._errors():
            rows = self._conn().execute("SELECT * FROM schedules ORDER BY name").fetchall()
        return [Schedule(**dict(r)) for r in rows]

    def delete_schedule(self, name: str) -> bool:
        with self._errors():
            cur = self._conn().execute("DELETE FROM schedules WHERE name = ?", (name,))
        return cur.rowcount == 1

    def advance_schedule(self, name: str, expected_next_at: float, next_at: float) -> bool:
        with self._errors():
            cur = self._conn().execute(
                "UPDATE schedules SET next_at = ? WHERE name = ? AND next_at = ?",
                (next_at, name, expected_next_at),
            )
        return cur.rowcount == 1
