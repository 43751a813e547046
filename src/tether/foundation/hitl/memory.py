"""The in-memory broker: the contract's test double and the broker for throwaway runs."""

from __future__ import annotations

import threading
from typing import Any

from tether.foundation.hitl.contract import ApprovalRequest, Broker


class MemoryHITLBroker(Broker):
    """Documents in a dict keyed by request id, each with its version."""

    def __init__(self) -> None:
        self._docs: dict[str, tuple[str, int, str, str]] = {}  # id -> doc, version, state, run
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> MemoryHITLBroker:
        return cls(**options)

    def _load(self, request_id: str) -> tuple[str, int] | None:
        with self._lock:
            found = self._docs.get(request_id)
        return None if found is None else (found[0], found[1])

    def _insert(self, request: ApprovalRequest, doc: str) -> bool:
        with self._lock:
            if request.id in self._docs:
                return False
            self._docs[request.id] = (doc, 1, request.state.value, request.run_id)
            return True

    def _swap(self, request: ApprovalRequest, doc: str, version: int) -> bool:
        with self._lock:
            if self._docs[request.id][1] != version:
                return False
            self._docs[request.id] = (doc, version + 1, request.state.value, request.run_id)
            return True

    def _select(self, state: str | None, run_id: str | None) -> list[str]:
        with self._lock:
            return [
                doc
                for doc, _, s, run in self._docs.values()
                if (state is None or s == state) and (run_id is None or run == run_id)
            ]

    def close(self) -> None:
        """Nothing to release."""
