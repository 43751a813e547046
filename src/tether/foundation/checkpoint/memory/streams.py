"""Run streams in the in-memory I2 double: a run's values per key, beside its journal."""

from __future__ import annotations

import time
from dataclasses import replace

from tether.foundation.checkpoint.contract import TERMINAL, JournalEntry, StreamItem, StreamPage
from tether.foundation.checkpoint.memory.state import MemoryState


class MemoryStreams(MemoryState):
    """The streams half of the I2 contract, mixed into MemoryCheckpointer."""

    def append_stream(
        self, run_id: str, token: str, key: str, value: str, entry: JournalEntry
    ) -> int:
        with self._lock:
            run = self._leased(run_id, token)
            values = run.streams.setdefault(key, [])
            offset = len(values)
            self._insert(run, [replace(entry, value=str(offset))])
            values.append(
                StreamItem(
                    run_id=run_id,
                    key=key,
                    offset=offset,
                    value=value,
                    attempt=run.record.claims,
                    written_at=time.time(),
                )
            )
            self._work.notify_all()
            return offset

    def read_stream(self, run_id: str, key: str, offset: int = 0, limit: int = 1000) -> StreamPage:
        with self._lock:
            run = self._get(run_id)
            items = run.streams.get(key, [])[max(offset, 0) : max(offset, 0) + limit]
            closed = run.record.status in TERMINAL and len(items) < limit
            return StreamPage(items=list(items), closed=closed)
