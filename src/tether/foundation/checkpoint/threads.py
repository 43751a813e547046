"""The one rule of the thread-blob sweep, for every backend: a blob stays while a checkpoint or
a write refers to it, directly or through the blobs it refers to (a list's chunks, a chunk's
items)."""

from __future__ import annotations

from collections.abc import Callable, Iterable


def reachable(held: Iterable[Iterable[str]], refs_of: Callable[[str], Iterable[str]]) -> set[str]:
    """Every blob hash the rows' refs reach; `refs_of` gives a stored blob's own refs."""
    seen: set[str] = set()
    todo = [h for refs in held for h in refs]
    while todo:
        h = todo.pop()
        if h not in seen:
            seen.add(h)
            todo.extend(refs_of(h))
    return seen
