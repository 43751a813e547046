"""Pruning finished runs from SQLite, and listing the blobs rows still refer to: the I2 methods
outside a run's execution. Blobs are swept elsewhere, by reference: `blob_refs` is what the
sweep must spare."""

from __future__ import annotations

import time

from tether.foundation.blobs.contract import BLOB_REF, blob_address
from tether.foundation.checkpoint.backends.sqlite.connection import SqliteDatabase
from tether.foundation.checkpoint.contract import Pruned


class SqliteHousekeeping:
    """The housekeeping half of the I2 contract, mixed into SqliteCheckpointer."""

    _db: SqliteDatabase
    _retention: float

    def prune(self, finished_before: float) -> Pruned:
        with self._db.transaction() as c:
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
                c.execute(f"DELETE FROM streams WHERE run_id IN ({marks})", chunk)
                c.execute(f"DELETE FROM runs WHERE id IN ({marks})", chunk)
            events = c.execute(
                "DELETE FROM events WHERE created_at < ?", (time.time() - self._retention,)
            ).rowcount
        return Pruned(run_ids=ids, entries=entries, events=events)

    def blob_refs(self) -> set[str]:
        like = BLOB_REF + "%"
        rows = self._db.one(
            "SELECT input FROM runs WHERE input LIKE ? UNION ALL "
            "SELECT output FROM runs WHERE output LIKE ? UNION ALL "
            "SELECT value FROM journal WHERE value LIKE ? UNION ALL "
            "SELECT input FROM journal WHERE input LIKE ?",
            (like,) * 4,
        )
        return {a for r in rows if (a := blob_address(r[0]))}
