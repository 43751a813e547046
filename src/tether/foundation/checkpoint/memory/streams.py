"""Run streams in the in-memory I2 double: a run's values per key, beside its journal."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

from tether.foundation.checkpoint.contract import (
    RESTART_PREFIX,
    TERMINAL,
    JournalEntry,
    StreamItem,
    StreamPage,
    restart_marker,
)
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

    def append_tokens(
        self, run_id: str, token: str, key: str, step_id: str, values: Sequence[str], first: bool
    ) -> None:
        with self._lock:
            run = self._leased(run_id, token)
            items = run.streams.setdefault(key, [])
            tagged = run.stream_steps.setdefault(key, {})  # offset -> the step that wrote it
            rows = list(values)
            if first:
                mine = [o for o, sid in tagged.items() if sid == step_id]
                marks = [o for o in mine if items[o].value.startswith(RESTART_PREFIX)]
                unmarked = [o for o in mine if o > max(marks, default=-1)]
                if unmarked:
                    rows.insert(0, restart_marker(min(unmarked)))
            now = time.time()
            for value in rows:
                tagged[len(items)] = step_id
                items.append(StreamItem(run_id, key, len(items), value, run.record.claims, now))
            self._work.notify_all()

    def read_stream(self, run_id: str, key: str, offset: int = 0, limit: int = 1000) -> StreamPage:
        with self._lock:
            run = self._get(run_id)
            items = run.streams.get(key, [])[max(offset, 0) : max(offset, 0) + limit]
            closed = run.record.status in TERMINAL and len(items) < limit
            return StreamPage(items=list(items), closed=closed)
