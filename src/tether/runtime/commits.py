"""Group commit across the runs a worker executes: one transaction, one fsync, for every append
(and completion) that arrived while the previous commit was in flight.

Each run executes on its own thread and blocks in `append` until the commit holding its rows
is done, so a run moves on only once its step is on disk, as with a commit of its own. One
commit thread per worker makes every commit: it takes all the appends queued so far, commits
them (`Checkpointer.append_many`, each lease checked on its own rows), wakes exactly the runs
whose rows that commit held, and takes what queued meanwhile. A run thread only queues and
waits on its own lock: with 16 runs held, the leader election among run threads this replaced
woke every waiting thread after each commit (a `notify_all`, 16% of the worker's CPU in a
py-spy profile), and each next commit waited for a woken thread to be scheduled to lead it.
With one append queued the commit thread makes the plain `append` (or `complete`), so a lone
run pays the round trip it did before plus a hand-off. A fenced or failing append gets its own
error back, and the others are committed regardless.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from types import TracebackType

from tether.errors import RunStateError
from tether.foundation.checkpoint.contract import Append, Checkpointer, JournalEntry, LeaseLost


class _Queued:
    __slots__ = ("append", "done", "error")

    def __init__(self, append: Append) -> None:
        self.append = append
        self.done = threading.Lock()  # held until the commit thread has this append's answer
        self.done.acquire()
        self.error: BaseException | None = None


class GroupCommit:
    """Shared by the runs of one worker; `append` and `complete` as the Checkpointer's, from
    any thread, until `close`."""

    def __init__(self, checkpointer: Checkpointer) -> None:
        self._cp = checkpointer
        self._lock = threading.Lock()
        self._queued = threading.Condition(self._lock)
        self._queue: list[_Queued] = []
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="tether-commit", daemon=True)
        self._thread.start()

    def append(self, run_id: str, token: str, entries: Sequence[JournalEntry]) -> None:
        self._join(Append(run_id, token, entries))

    def complete(
        self, run_id: str, token: str, output: str, entries: Sequence[JournalEntry] = ()
    ) -> None:
        self._join(Append(run_id, token, entries, output))

    def close(self) -> None:
        """Commit what is queued, then stop the commit thread."""
        with self._lock:
            self._closed = True
            self._queued.notify()
        self._thread.join()

    def __enter__(self) -> GroupCommit:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _join(self, append: Append) -> None:
        me = _Queued(append)
        with self._lock:
            if self._closed:
                raise RuntimeError("this worker's group commit is closed: its worker has stopped")
            self._queue.append(me)
            if len(self._queue) == 1:  # the commit thread may be idle, waiting for one
                self._queued.notify()
        me.done.acquire()
        if me.error is not None:
            raise me.error

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closed:
                    self._queued.wait()
                if not self._queue:
                    return
                batch, self._queue = self._queue, []
            self._commit(batch)

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
        except BaseException as e:  # the database failed them all: each run hears it
            for q in batch:
                q.error = e
        finally:
            for q in batch:
                q.done.release()
