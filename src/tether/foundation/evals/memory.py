"""The in-memory eval store: the contract's test double and the store of throwaway evals."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from tether.foundation.evals.contract import CaseResult, Judgment, Override


class MemoryEvalStore:
    """Results in recording order; judgments by key; overrides in order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._results: list[CaseResult] = []
        self._judgments: dict[str, Judgment] = {}
        self._overrides: list[Override] = []

    @classmethod
    def from_settings(cls, settings: Any) -> MemoryEvalStore:
        return cls()

    def record(self, results: Sequence[CaseResult]) -> None:
        now = datetime.now(UTC)
        with self._lock:
            self._results += [r.model_copy(update={"recorded_at": now}) for r in results]

    def window(
        self, workflow: str, ref: str, cohort: str | None, n: int, eval_run: str | None = None
    ) -> list[CaseResult]:
        with self._lock:
            found = [
                r
                for r in reversed(self._results)
                if r.workflow == workflow
                and r.ref == ref
                and (cohort is None or cohort in r.cohorts)
                and (eval_run is None or r.eval_run == eval_run)
            ]
        return found[:n]

    def latest_run(self, workflow: str, ref: str) -> str | None:
        with self._lock:
            runs = [r.eval_run for r in self._results if r.workflow == workflow and r.ref == ref]
        return runs[-1] if runs else None

    def recent(self, n: int) -> list[CaseResult]:
        with self._lock:
            return list(reversed(self._results))[:n]

    def workflows(self, refs: Sequence[str]) -> list[str]:
        with self._lock:
            return sorted({r.workflow for r in self._results if r.ref in refs})

    def cohorts(self, workflow: str, refs: Sequence[str]) -> list[str]:
        with self._lock:
            found = {
                c for r in self._results if r.workflow == workflow and r.ref in refs
                for c in r.cohorts
            }  # fmt: skip
        return sorted(found)

    def judgment(self, key: str) -> Judgment | None:
        with self._lock:
            return self._judgments.get(key)

    def put_judgment(self, key: str, judgment: Judgment) -> None:
        with self._lock:
            self._judgments.setdefault(key, judgment)

    def add_override(self, override: Override) -> None:
        with self._lock:
            self._overrides.append(override)

    def overrides(self, candidate: str) -> list[Override]:
        with self._lock:
            return [o for o in self._overrides if o.candidate == candidate]

    def close(self) -> None:
        """Nothing to release."""
