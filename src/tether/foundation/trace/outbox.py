"""Spans on their way to a collector: a bounded buffer drained by one thread of its own.

A run must never wait for, or fail because of, a trace backend. `put` is a locked append; a
daemon thread sends batches when one is full, when the oldest span has waited `delay` seconds,
or when `flush` asks. A batch the collector refused stays buffered and is tried again after a
backoff (1 s, doubling to 30 s); once the buffer holds `capacity` spans the oldest is dropped,
and the drops are reported as one warning carrying the count and the last reason the collector
gave (when it answers again, at close, and at most once a minute in between), not a line a
span.

The OpenTelemetry SDK's BatchSpanProcessor does not fit: its `force_flush` exports on the
caller's thread (the runtime flushes at every park and finish, so a down collector would hold
the worker's event loop for the exporter's whole retry budget), a batch that fails is dropped,
not kept, and a full queue logs a line a dropped span.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from tether.foundation.trace.contract import Span

log = logging.getLogger("tether.trace")

FIRST_BACKOFF = 1.0
MAX_BACKOFF = 30.0
WARN_EVERY = 60.0

Send = Callable[[Sequence[Span]], str | None]  # None when the collector took the batch, or why not


class SpanOutbox:
    def __init__(
        self,
        send: Send,
        *,
        target: str,
        capacity: int = 2048,
        batch: int = 512,
        delay: float = 5.0,
        close_timeout: float = 10.0,
        interrupt: Callable[[], None] = lambda: None,
    ) -> None:
        """`send` delivers one batch (its own retries included); `interrupt` cuts a send in
        progress short (the exporter's shutdown) when the outbox closes while it is down."""
        self._send = send
        self._interrupt = interrupt
        self.target = target
        self._capacity = capacity
        self._batch = batch
        self._delay = delay
        self._close_timeout = close_timeout
        self._buffer: deque[Span] = deque()
        self._since = 0.0  # monotonic time the oldest buffered span arrived
        self._cond = threading.Condition()
        self._flushing = False
        self._closing = False
        self._down = False  # the last send failed
        self._sending = 0  # spans taken from the buffer, not yet sent or put back
        self._retry_at = 0.0
        self._backoff = FIRST_BACKOFF
        self._dropped = 0  # since the last warning
        self._reason = ""  # why the last send failed
        self._warned_at = time.monotonic()
        self._thread = threading.Thread(target=self._drain, name=f"tether-trace {target}")
        self._thread.daemon = True
        self._thread.start()

    def put(self, span: Span) -> None:
        with self._cond:
            if self._closing:
                self._dropped += 1
                return
            if not self._buffer:
                self._since = time.monotonic()
                self._cond.notify_all()  # the thread now waits `delay`, not for ever
            elif len(self._buffer) >= self._capacity:
                self._buffer.popleft()
                self._dropped += 1
            self._buffer.append(span)
            if len(self._buffer) == self._batch:
                self._cond.notify_all()

    def flush(self) -> None:
        """Ask for what is buffered to be sent now; never waits for the collector."""
        with self._cond:
            if self._buffer:
                self._flushing = True
                self._cond.notify_all()

    def drain(self, timeout: float) -> bool:
        """Wait until everything put so far has been sent: False if the collector refused it
        or `timeout` passed first. For a replay of a dump, which must not outrun the bound;
        a run never waits here."""
        deadline = time.monotonic() + timeout
        with self._cond:
            if self._buffer:
                self._flushing = True
                self._cond.notify_all()
            while self._buffer or self._sending:
                remaining = deadline - time.monotonic()
                if self._down or remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return not self._down

    def close(self) -> None:
        """Send what is buffered (if the collector is up), waiting at most `close_timeout`,
        then report what was dropped."""
        with self._cond:
            if self._closing:
                return
            self._closing = True
            down = self._down
            self._cond.notify_all()
        if down:
            self._interrupt()
        self._thread.join(self._close_timeout)
        if self._thread.is_alive():
            self._interrupt()
            self._thread.join(1.0)
        with self._cond:
            self._dropped += len(self._buffer)
            self._buffer.clear()
            self._warn_dropped()

    # -- the sending thread --------------------------------------------------------------

    def _due(self, now: float) -> bool:
        if not self._buffer:
            return False
        if self._down and not self._closing:
            return now >= self._retry_at
        return (
            self._closing
            or self._flushing
            or len(self._buffer) >= self._batch
            or now - self._since >= self._delay
        )

    def _wait(self, now: float) -> float | None:
        if not self._buffer:
            return None
        if self._down:
            return max(0.0, self._retry_at - now)
        return max(0.0, self._since + self._delay - now)

    def _drain(self) -> None:
        while True:
            with self._cond:
                while not self._due(now := time.monotonic()):
                    if self._closing and (not self._buffer or self._down):
                        return
                    self._cond.wait(self._wait(now))
                if self._closing and self._down:
                    return
                count = min(self._batch, len(self._buffer))
                batch = [self._buffer.popleft() for _ in range(count)]
                self._sending = count
                if not self._buffer:
                    self._flushing = False
                else:
                    self._since = time.monotonic()
            failure = self._try(batch)
            with self._cond:
                self._sending = 0
                self._cond.notify_all()
                if failure is None:
                    if self._down and self._dropped:
                        self._warn_dropped()
                    self._down, self._backoff = False, FIRST_BACKOFF
                    continue
                # keep the batch, oldest first, as far as the bound allows
                room = self._capacity - len(self._buffer)
                self._buffer.extendleft(reversed(batch[len(batch) - room :] if room > 0 else []))
                self._dropped += max(0, len(batch) - max(room, 0))
                self._down, self._reason = True, failure
                self._retry_at = time.monotonic() + self._backoff
                self._backoff = min(self._backoff * 2, MAX_BACKOFF)
                if self._dropped and time.monotonic() - self._warned_at >= WARN_EVERY:
                    self._warn_dropped()

    def _try(self, batch: Sequence[Span]) -> str | None:
        try:
            return self._send(batch)
        except Exception as e:
            log.exception("trace export to %s raised", self.target)
            return f"{type(e).__name__}: {e}"

    def _warn_dropped(self) -> None:
        if self._dropped:
            log.warning(
                "dropped %d spans bound for %s: its buffer was full, or still held them at "
                "close (the collector unreachable, refusing, or slower than the spans came)%s",
                self._dropped,
                self.target,
                f"; last error: {self._reason}" if self._reason else "",
            )
        self._dropped = 0
        self._warned_at = time.monotonic()
