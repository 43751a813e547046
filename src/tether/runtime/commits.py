"""Group commit across the runs a worker executes: one transaction, one fsync, for every append
(and completion) that arrived while the previous commit was in flight.

Each run executes on its own thread and blocks in `append` until the commit holding its rows
is done, so a run moves on only once its step is on disk, as with a commit of its own. The
first thread to find no commit in flight leads: it takes every append queued so far and commits
them (`Checkpointer.append_many`, each lease checked on its own rows); appends arriving
meanwhile queue for the next leader. With one append queued the leader makes the plain
`append` (or `complete`), so a lone run pays what it did before. A fenced or failing append
gets its own error back, and the others are committed regardless.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from tether.errors import RunStateError
from tether.foundation.checkpoint.contract import Append, Checkpointer, JournalEntry, LeaseLost


class _Queued:
    __slots__ = ("append", "done", "error")

    def __init__(self, append: Append) -> None:
        self.append = append
        self.done = False
        self.error: BaseException | None = None


class GroupCommit:
    """Shared by the runs of one worker; `append` and `complete` as the Checkpointer's, from
    any thread."""

    def __init__(self, checkpointer: Checkpointer) -> None:
        self._cp = checkpointer
        self._cond = threading.Condition(threading.Lock())
        self._queue: list[_Queued] = []
        self._leading = False

    def append(self, run_id: str, token: str, entries: Sequence[JournalEntry]) -> None:
        self._join(Append(run_id, token, entries))

    def complete(
        self, run_id: str, token: str, output: str, entries: Sequence[JournalEntry] = ()
    ) -> None:
        self._join(Append(run_id, token, entries, output))

    def _join(self, append: Append) -> None:
        me = _Queued(append)
        with self._cond:
            self._queue.append(me)
            while self._leading and not me.done:
                self._cond.wait()
            if not me.done:
                self._leading = True
                batch, self._queue = self._queue, []
        if not me.done:
            try:
                self._commit(batch)
            finally:
                with self._cond:
                    self._leading = False
                    self._cond.notify_all()
        if me.error is not None:
            raise me.error

    def _commit(self, batch: list[_Queued]) -> None:
        try:
            if len(batch) == 1:
                a = batch[0].append
                try:
                    if a.output is None:
                        self._cp.append(a.run_id, a.token, a.entries)
                    else:
                        self._cp.complete(a.run_id, a.token, a.output, a.entries)
                except (LeaseLost, RunStateError) as e:
                    batch[0].error = e
            else:
                results = self._cp.append_many([q.append for q in batch])
                for q, error in zip(batch, results, strict=True):
                    q.error = error
        except BaseException as e:  # the database failed them all (or the leader is stopping)
            for q in batch:
                q.error = e
            raise
        finally:
            for q in batch:
                q.done = True
