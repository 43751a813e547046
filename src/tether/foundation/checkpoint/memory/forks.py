"""A forked run in the in-memory I2 double: a pending run created with its starting journal."""

from __future__ import annotations

import time
from collections.abc import Sequence

from tether.foundation.checkpoint.contract import JournalEntry, NewRun, RunRecord, RunStatus
from tether.foundation.checkpoint.memory.state import MemoryRun, MemoryState


class MemoryForks(MemoryState):
    """The fork half of the I2 contract, mixed into MemoryCheckpointer."""

    def fork_run(self, new: NewRun, entries: Sequence[JournalEntry]) -> RunRecord:
        with self._lock:
            now = time.time()
            record = RunRecord(
                id=new.id,
                workflow=new.workflow,
                version=new.version,
                status=RunStatus.PENDING,
                input=new.input,
                parent_id=new.parent_id,
                parent_step=new.parent_step,
                created_at=now,
                updated_at=now,
                meta=new.meta,
                queue=new.queue,
                queue_key=new.queue_key,
                priority=new.priority,
            )
            run = MemoryRun(record=record, horizon=self._last_event)
            self._insert(run, entries)
            self._runs[new.id] = run
            self._work.notify_all()
            return record
