"""Pruning finished runs from PostgreSQL, and listing the blobs rows still refer to.

`prune` is one statement (data-modifying CTEs), so a run goes with its journal and waits or not
at all. Blobs are swept elsewhere, by reference: `blob_refs` is what the sweep must spare.
"""

from __future__ import annotations

from tether.foundation.blobs.contract import BLOB_REF, blob_address
from tether.foundation.checkpoint.backends.postgres.database import NOW, Database
from tether.foundation.checkpoint.contract import Pruned


class PostgresHousekeeping:
    """The housekeeping half of the I2 contract, mixed into PostgresCheckpointer."""

    _db: Database
    _retention: float

    def prune(self, finished_before: float) -> Pruned:
        [row] = self._db.one(
            "WITH gone AS (DELETE FROM runs WHERE status IN ('completed', 'failed', 'cancelled') "
            "AND updated_at < %s RETURNING id), "
            "entries AS (DELETE FROM journal WHERE run_id IN (SELECT id FROM gone) RETURNING 1), "
            "waits AS (DELETE FROM waits WHERE run_id IN (SELECT id FROM gone) RETURNING 1), "
            "streams AS (DELETE FROM streams WHERE run_id IN (SELECT id FROM gone) RETURNING 1), "
            f"events AS (DELETE FROM events WHERE created_at < {NOW} - %s RETURNING 1) "
            "SELECT ARRAY(SELECT id FROM gone) AS run_ids, "
            "(SELECT count(*) FROM entries) AS entries, (SELECT count(*) FROM events) AS events",
            (finished_before, self._retention),
        )
        return Pruned(**row)

    def blob_refs(self) -> set[str]:
        like = BLOB_REF.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self._db.one(
            "SELECT input AS t FROM runs WHERE input LIKE %s UNION ALL "
            "SELECT output FROM runs WHERE output LIKE %s UNION ALL "
            "SELECT value FROM journal WHERE value LIKE %s UNION ALL "
            "SELECT input FROM journal WHERE input LIKE %s",
            (like,) * 4,
        )
        return {a for r in rows if (a := blob_address(r["t"]))}
