"""Where a primitive is called from: the gather branch path its step id starts with.

The path lives in a contextvar, so each `gather` branch (a task with its own copy of the
context) keeps its own: `""` at the top level, `"3.0/"` in the first branch of the gather whose
id is 3, `"3.0/2.1/"` one gather deeper. A step id is this path plus a per-path sequence number
(`Context._next_id`), which is why ids survive any interleaving of the branches on replay.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from contextvars import ContextVar
from typing import Any

BRANCH: ContextVar[str] = ContextVar("tether_branch", default="")


def in_branch() -> bool:
    """Inside a gather branch, writes may share a commit with the other branches'."""
    return bool(BRANCH.get())


def start_branch(gather_id: str, index: int, branch: Awaitable[Any]) -> asyncio.Future[Any]:
    """Schedule branch `index` of gather `gather_id` as a task under its own branch path."""
    token = BRANCH.set(f"{gather_id}.{index}/")
    try:
        return asyncio.ensure_future(branch)
    finally:
        BRANCH.reset(token)
