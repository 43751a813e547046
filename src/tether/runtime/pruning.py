"""`tether prune`: drop old finished runs, then sweep the blobs nothing refers to any more;
and of each LangGraph thread keep only the newest checkpoints, sweeping the thread blobs
(messages, channel values) that no checkpoint or write left refers to.

A blob is referred to by hash from any interface's rows (I2's runs and journal, I1's
tool_call_results), never by foreign key, so the sweep asks each interface for the hashes it
still holds and deletes the rest. It spares blobs newer than its own start: a value being
written right now may not be referenced yet. Cost rows and guard audit rows are history, not
run state, and are kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from pydantic import BaseModel

from tether.foundation.blobs.contract import BlobStore
from tether.foundation.checkpoint.contract import Checkpointer, ThreadCheckpoints


class PruneReport(BaseModel):
    runs: int
    journal_entries: int
    events: int
    tool_calls: int
    blobs: int
    bytes_freed: int
    thread_checkpoints: int = 0
    thread_writes: int = 0
    thread_blobs: int = 0


def sweep_blobs(
    blobs: BlobStore, referenced: Iterable[Callable[[], set[str]]], started_at: float
) -> tuple[int, int]:
    """Delete unreferenced blobs older than `started_at`; returns (count, bytes)."""
    keep: set[str] = set()
    for refs in referenced:
        keep |= refs()
    count = freed = 0
    for address, created_at, _size in blobs.addresses():
        if address in keep or created_at >= started_at:
            continue
        freed += blobs.delete(address)
        count += 1
    return count, freed


def prune(
    cp: Checkpointer,
    forget_tool_calls: Callable[[list[str]], int],
    refs: Iterable[Callable[[], set[str]]],
    blobs: BlobStore,
    finished_before: float,
    keep_thread_checkpoints: int,
) -> PruneReport:
    started = time.time()
    pruned = cp.prune(finished_before)
    threads = None
    if isinstance(cp, ThreadCheckpoints):
        threads = cp.prune_threads(keep_thread_checkpoints)
    tool_calls = forget_tool_calls(pruned.run_ids) if pruned.run_ids else 0
    count, freed = sweep_blobs(blobs, refs, started)
    return PruneReport(
        runs=len(pruned.run_ids),
        journal_entries=pruned.entries,
        events=pruned.events,
        tool_calls=tool_calls,
        blobs=count,
        bytes_freed=freed,
        thread_checkpoints=threads.checkpoints if threads else 0,
        thread_writes=threads.writes if threads else 0,
        thread_blobs=threads.blobs if threads else 0,
    )
