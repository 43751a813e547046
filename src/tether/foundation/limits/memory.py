"""The in-memory limits store: one process's counters, behind one lock.

The test double beside the contract, and enough for a single worker that may forget its
counters on restart. Workers that share limits use the sqlite (one host) or redis backend.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tether.foundation.limits.kv import DictKv, Kv, KvLimitsStore


class MemoryLimitsStore(KvLimitsStore):
    def __init__(self) -> None:
        self._data: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> MemoryLimitsStore:
        return cls()

    @contextmanager
    def _transaction(self) -> Iterator[Kv]:
        with self._lock:
            yield DictKv(self._data)

    def close(self) -> None:
        pass
