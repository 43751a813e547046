"""Thread checkpoints (integrations/langgraph) in the in-memory I2 double: three dicts under the
state's lock, kept apart from the runs as the SQL backends keep them in their own tables."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace as copied

from tether.foundation.checkpoint.contract import (
    ThreadBlob,
    ThreadCheckpoint,
    ThreadQuery,
    ThreadsPruned,
    ThreadWrite,
)
from tether.foundation.checkpoint.memory.state import MemoryState
from tether.foundation.checkpoint.threads import reachable

_Key = tuple[str, str, str]  # (thread, ns, checkpoint id)


class MemoryThreads(MemoryState):
    """The thread-checkpoint half of the I2 contract, mixed into MemoryCheckpointer."""

    def __init__(self, event_retention: float = 7 * 24 * 3600.0) -> None:
        super().__init__(event_retention)
        self._checkpoints: dict[_Key, ThreadCheckpoint] = {}
        self._writes: dict[_Key, dict[tuple[str, int], ThreadWrite]] = {}
        self._blobs: dict[str, ThreadBlob] = {}

    def _put_blobs(self, blobs: Sequence[ThreadBlob]) -> None:
        for b in blobs:
            self._blobs.setdefault(b.hash, copied(b))

    def put_thread_checkpoint(
        self, checkpoint: ThreadCheckpoint, blobs: Sequence[ThreadBlob] = ()
    ) -> None:
        with self._lock:
            self._put_blobs(blobs)
            checkpoints = self._checkpoints
            key = (checkpoint.thread_id, checkpoint.ns, checkpoint.checkpoint_id)
            checkpoints[key] = copied(checkpoint)

    def put_thread_writes(
        self,
        thread_id: str,
        ns: str,
        checkpoint_id: str,
        writes: Sequence[ThreadWrite],
        replace: bool,
        blobs: Sequence[ThreadBlob] = (),
    ) -> None:
        with self._lock:
            self._put_blobs(blobs)
            stored = self._writes
            of = stored.setdefault((thread_id, ns, checkpoint_id), {})
            for w in writes:
                if replace or (w.task_id, w.idx) not in of:
                    of[(w.task_id, w.idx)] = copied(w)

    def thread_checkpoint(
        self, thread_id: str, ns: str, checkpoint_id: str | None
    ) -> ThreadCheckpoint | None:
        found = self.thread_checkpoints(
            ThreadQuery(thread_id=thread_id, ns=ns, checkpoint_id=checkpoint_id, limit=1)
        )
        return found[0] if found else None

    def thread_checkpoints(self, query: ThreadQuery) -> list[ThreadCheckpoint]:
        with self._lock:
            checkpoints = self._checkpoints
            found = [
                copied(c)
                for (thread, ns, cid), c in checkpoints.items()
                if (query.thread_id is None or thread == query.thread_id)
                and (query.ns is None or ns == query.ns)
                and (query.checkpoint_id is None or cid == query.checkpoint_id)
                and (query.before is None or cid < query.before)
            ]
        found.sort(key=lambda c: c.checkpoint_id, reverse=True)
        return found if query.limit is None else found[: query.limit]

    def thread_writes(self, thread_id: str, ns: str, checkpoint_id: str) -> list[ThreadWrite]:
        with self._lock:
            stored = self._writes
            of = stored.get((thread_id, ns, checkpoint_id), {})
            return [copied(of[k]) for k in sorted(of)]

    def thread_blobs(self, hashes: Sequence[str]) -> dict[str, ThreadBlob]:
        with self._lock:
            return {h: copied(self._blobs[h]) for h in hashes if h in self._blobs}

    def delete_thread(self, thread_id: str) -> None:
        with self._lock:
            checkpoints, stored = self._checkpoints, self._writes
            for key in [k for k in checkpoints if k[0] == thread_id]:
                del checkpoints[key]
            for key in [k for k in stored if k[0] == thread_id]:
                del stored[key]

    def prune_threads(self, keep: int) -> ThreadsPruned:
        with self._lock:
            by_ns: dict[tuple[str, str], list[_Key]] = {}
            for key in self._checkpoints:
                by_ns.setdefault(key[:2], []).append(key)
            old = [k for keys in by_ns.values() for k in sorted(keys, reverse=True)[keep:]]
            writes = sum(len(self._writes.pop(k, {})) for k in old)
            for k in old:
                del self._checkpoints[k]
            held = [c.refs for c in self._checkpoints.values()]
            held += [w.refs for of in self._writes.values() for w in of.values()]
            blobs = self._blobs
            dropped = set(blobs) - reachable(held, lambda h: blobs[h].refs if h in blobs else ())
            for h in dropped:
                del self._blobs[h]
            return ThreadsPruned(checkpoints=len(old), writes=writes, blobs=len(dropped))
