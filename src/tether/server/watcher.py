"""One change watcher per server process, shared by every open event stream.

A thread blocks in the checkpointer's own `wait_for_work`, which returns when the database
changed (SQLite's `PRAGMA data_version`, PostgreSQL's LISTEN/NOTIFY, the memory backend's
condition) or at its timeout, and bumps a generation number that streams wait on. Fifty open
streams therefore cost one watcher, not fifty pollers; each stream re-reads only when the
generation moves and sends only what differs from what it sent.

PostgreSQL notifies runnable work (created, woken, released), not every journal append, so the
watcher also bumps every `FALLBACK_SECONDS` to carry the rest. Bumps are at least
`MIN_GAP_SECONDS` apart: a burst of commits becomes one re-read, and an overdue timer (which
makes `wait_for_work` return at once) cannot spin the thread.

It waits in slices of `STOP_SECONDS`, so that closing it (the server shutting down) waits that
long at most, not a whole fallback period: a slice that ends before its timeout saw a change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time

from tether.foundation.checkpoint.contract import Checkpointer

log = logging.getLogger("tether.server")

FALLBACK_SECONDS = 5.0
MIN_GAP_SECONDS = 0.2
STOP_SECONDS = 0.5


class ChangeWatcher:
    def __init__(self, checkpointer: Checkpointer) -> None:
        self.checkpointer = checkpointer
        self.generation = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed = asyncio.Event()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.Thread(target=self._watch, name="tether-server-watch", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=STOP_SECONDS + 1)

    async def wait(self, seen: int, timeout: float) -> int:
        """The generation once it differs from `seen`, or the current one after `timeout`."""
        if self.generation == seen:
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout)
        return self.generation

    def _watch(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            if not self._changed_or_fallback(began + FALLBACK_SECONDS):
                return
            if self._stop.wait(max(0.0, MIN_GAP_SECONDS - (time.monotonic() - began))):
                return
            if self._loop is not None and not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._bump)

    def _changed_or_fallback(self, fallback: float) -> bool:
        """Wait until the database changed or `fallback` (monotonic) is reached; False if the
        watcher was closed meanwhile."""
        while True:
            start = time.monotonic()
            timeout = min(STOP_SECONDS, fallback - start)
            try:
                self.checkpointer.wait_for_work(max(timeout, 0.0))
            except Exception:  # a database hiccup must not end every stream's updates
                log.warning("change watcher: waiting for changes failed", exc_info=True)
                return not self._stop.is_set()
            if self._stop.is_set():
                return False
            now = time.monotonic()
            if now >= fallback or now - start < 0.9 * timeout:
                return True

    def _bump(self) -> None:
        self.generation += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
