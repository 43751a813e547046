"""A model call's streamed tokens, written to a run stream as they arrive.

The call itself is journaled once, as a whole, when it returns; its tokens are stream values
that no journal entry stands for, written under the run's lease. An attempt that is cut short
(a retry, a fallback, a crash) leaves its tokens in the stream, and the next attempt's first
write puts a restart marker before its own (I2 decides, from the tokens the step left): a
reader drops the values since the marker's offset and never sees a token twice unmarked.
"""

from __future__ import annotations

import json

from tether.foundation.checkpoint.contract import LeaseLost
from tether.runtime.execution import Abandon, CancelRequested, Execution


class StreamedTokens:
    """The I12 `TokenSink` of one model call (step `sid`) streaming into the run's `key`."""

    def __init__(self, ex: Execution, sid: str, key: str) -> None:
        self._ex, self._sid, self._key = ex, sid, key
        self._first = True

    def attempt(self) -> None:
        self._first = True

    async def token(self, text: str) -> None:
        ex = self._ex
        try:
            ex.cp.append_tokens(
                ex.run.id, ex.token, self._key, self._sid, [json.dumps(text)], self._first
            )
        except LeaseLost as e:
            raise (CancelRequested() if e.cancel_requested else Abandon()) from None
        self._first = False
