"""How a failing step is tried again: exponential backoff with full jitter, capped."""

from __future__ import annotations

import random
from dataclasses import dataclass

from tether.errors import NonRetryableError, StepFailed


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    initial_interval: float = 0.5
    backoff: float = 2.0
    max_interval: float = 30.0
    jitter: bool = True
    non_retryable: tuple[type[BaseException], ...] = ()
    # A backoff that may be longer than this (seconds; None: the worker's lease) parks the run
    # on a durable timer, as ctx.sleep does, instead of holding its worker slot.
    park_after: float | None = None

    def should_retry(self, error: BaseException, attempt: int) -> bool:
        if attempt >= self.max_attempts:
            return False
        return not isinstance(error, (NonRetryableError, StepFailed, *self.non_retryable))

    def ceiling(self, attempt: int) -> float:
        """The longest wait before attempt `attempt + 1` (the delay before jitter)."""
        return min(self.max_interval, self.initial_interval * self.backoff ** (attempt - 1))

    def delay(self, attempt: int) -> float:
        """Seconds before attempt `attempt + 1`."""
        base = self.ceiling(attempt)
        return random.uniform(0, base) if self.jitter else base


DEFAULT_RETRY = RetryPolicy()
NO_RETRY = RetryPolicy(max_attempts=1)
