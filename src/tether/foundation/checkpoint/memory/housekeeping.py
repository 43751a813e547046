"""Pruning finished runs and listing blob references in the in-memory I2 double."""

from __future__ import annotations

import time

from tether.foundation.blobs.contract import blob_address
from tether.foundation.checkpoint.contract import TERMINAL, Pruned
from tether.foundation.checkpoint.memory.state import MemoryState


class MemoryHousekeeping(MemoryState):
    """The housekeeping half of the I2 contract, mixed into MemoryCheckpointer."""

    def prune(self, finished_before: float) -> Pruned:
        with self._lock:
            gone = [
                r
                for r in self._runs.values()
                if r.record.status in TERMINAL and r.record.updated_at < finished_before
            ]
            for run in gone:
                del self._runs[run.record.id]
                if run.record.key is not None:
                    self._keys.pop(run.record.key, None)
            horizon = time.time() - self._retention
            kept = [e for e in self._events if e.created_at >= horizon]
            dropped, self._events = len(self._events) - len(kept), kept
            return Pruned(
                run_ids=[r.record.id for r in gone],
                entries=sum(len(r.journal) for r in gone),
                events=dropped,
            )

    def blob_refs(self) -> set[str]:
        with self._lock:
            texts = [
                t
                for r in self._runs.values()
                for t in (
                    r.record.input,
                    r.record.output,
                    *(v for e in r.journal.values() for v in (e.value, e.input)),
                )
            ]
        return {a for t in texts if (a := blob_address(t))}
