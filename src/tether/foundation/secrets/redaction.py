"""Secret values are known to one process-wide redactor, which strikes them from any text.

Spans, logs, journal writes and error messages all pass text through `redact` before it
leaves the process, so a value fetched through I7 cannot reach a store by accident: the
redactor learns each value the moment a `Secret` is made, before anyone can print it.
"""

from __future__ import annotations

import logging
import re
import threading

MASK = "***"


class Redactor:
    """Replaces every registered value with `***`; the longest value wins where two overlap."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def register(self, value: str) -> None:
        if not value or value in self._values:
            return
        with self._lock:
            self._values.add(value)
            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    @property
    def active(self) -> bool:
        """Whether any secret is registered (if not, redaction is the identity)."""
        return self._pattern is not None

    def redact(self, text: str) -> str:
        pattern = self._pattern
        return text if pattern is None else pattern.sub(MASK, text)


REDACTOR = Redactor()


def redact(text: str) -> str:
    """`text` with every secret value this process has fetched replaced by `***`."""
    return REDACTOR.redact(text)


class RedactingFilter(logging.Filter):
    """Redacts a record's message and traceback; attach it to handlers, where every record passes.

    (A filter on a logger misses records propagated from its children; a handler's sees them all.)
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
