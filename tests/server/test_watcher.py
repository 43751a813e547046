"""The server's one change watcher: a commit wakes the event streams well before the fallback
period, and shutting the server down waits for the watcher's current slice, not for a whole
fallback period (every `tether serve` stop, and every test's app, waited up to 5 s)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from tether import Tether
from tether.server.watcher import FALLBACK_SECONDS, STOP_SECONDS, ChangeWatcher


def test_a_commit_moves_the_generation_before_the_fallback_and_close_returns_within_a_slice(
    make_tether: Callable[..., Tether],
) -> None:
    t = make_tether("sqlite")
    watcher = ChangeWatcher(t.checkpointer)

    async def watch() -> tuple[int, float]:
        watcher.start(asyncio.get_running_loop())
        await asyncio.sleep(2 * STOP_SECONDS)  # past a slice that saw nothing
        assert watcher.generation == 0
        began = time.monotonic()
        t.start("drift", {"seconds": 1.0})
        generation = await watcher.wait(0, FALLBACK_SECONDS)
        return generation, time.monotonic() - began

    generation, waited = asyncio.run(watch())
    assert generation == 1
    assert waited < FALLBACK_SECONDS / 2  # woken by the commit, not by the fallback bump
    closing = time.monotonic()
    watcher.close()
    assert time.monotonic() - closing < FALLBACK_SECONDS / 2
    assert watcher._thread is not None and not watcher._thread.is_alive()
