"""A model call's streamed tokens, written to a run stream as they arrive.

The call itself is journaled once, as a whole, when it returns; its tokens are stream values
that no journal entry stands for, written under the run's lease. They are written in batches,
one commit per `FLUSH_SECONDS` of tokens (a provider sends dozens a second; a commit each would
cost more than the call), and whatever is left when the attempt ends. An attempt that is cut
short (a retry, a fallback, a crash) leaves its tokens in the stream, and the next attempt's
first write puts a restart marker before its own (I2 decides, from the tokens the step left): a
reader drops the values since the marker's offset and never sees a token twice unmarked.
"""

from __future__ import annotations

import json
import time

from tether.foundation.checkpoint.contract import LeaseLost
from tether.runtime.execution import Abandon, CancelRequested, Execution

FLUSH_SECONDS = 0.05


class StreamedTokens:
    """The I12 `TokenSink` of one model call (step `sid`) streaming into the run's `key`."""

    def __init__(self, ex: Execution, sid: str, key: str) -> None:
        self._ex, self._sid, self._key = ex, sid, key
        self._first = True
        self._batch: list[str] = []
        self._since = 0.0

    def attempt(self) -> None:
        self.flush()  # the previous attempt's last tokens go before any marker
        self._first = True

    async def token(self, text: str) -> None:
        if not self._batch:
            self._since = time.monotonic()
        self._batch.append(json.dumps(text))
        if time.monotonic() - self._since >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Write the tokens not written yet, in one commit under the lease."""
        if not self._batch:
            return
        ex = self._ex
        try:
            ex.cp.append_tokens(ex.run.id, ex.token, self._key, self._sid, self._batch, self._first)
        except LeaseLost as e:
            raise (CancelRequested() if e.cancel_requested else Abandon()) from None
        self._batch, self._first = [], False
