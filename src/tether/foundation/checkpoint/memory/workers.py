"""Which workers are alive and what they host, in the in-memory I2 double: one dict under the
state's lock, keyed as the SQL backends' `worker_hosts` rows are."""

from __future__ import annotations

import time
from collections.abc import Sequence
from fnmatch import fnmatchcase

from tether.foundation.checkpoint.contract import TERMINAL, Hosted, Resumer, RunRecord
from tether.foundation.checkpoint.memory.state import MemoryState
from tether.foundation.checkpoint.versions import highest_first

_Key = tuple[str, str, str, str]  # (owner, workflow, hosted version, version glob)


class MemoryWorkers(MemoryState):
    """The worker half of the I2 contract, mixed into MemoryCheckpointer."""

    def __init__(self, event_retention: float = 7 * 24 * 3600.0) -> None:
        super().__init__(event_retention)
        self._hosts: dict[_Key, float] = {}  # -> expires at

    def record_worker(self, owner: str, hosts: Sequence[Hosted], ttl_seconds: float) -> None:
        now = time.time()
        with self._lock:
            for key, expires in list(self._hosts.items()):
                if expires < now - self._retention:
                    del self._hosts[key]
            for h in hosts:
                for glob in (h.version, *h.resumes):
                    self._hosts[(owner, h.workflow, h.version, glob)] = now + ttl_seconds

    def resumers(self, run_ids: Sequence[str]) -> dict[str, list[Resumer]]:
        now = time.time()
        found: dict[str, list[Resumer]] = {}
        with self._lock:
            for run_id in run_ids:
                run = self._runs.get(run_id)
                live: dict[str, bool] = {}
                for (_, workflow, version, glob), expires in self._hosts.items():
                    if run is not None and self._covers(run.record, workflow, glob):
                        live[version] = live.get(version, False) or expires > now
                found[run_id] = highest_first([Resumer(version=v, live=x) for v, x in live.items()])
        return found

    def _stranded(self, run: RunRecord, now: float) -> bool:
        """With the lock held."""
        return run.status not in TERMINAL and not any(
            expires > now and self._covers(run, workflow, glob)
            for (_, workflow, _, glob), expires in self._hosts.items()
        )

    @staticmethod
    def _covers(run: RunRecord, workflow: str, glob: str) -> bool:
        return run.workflow == workflow and fnmatchcase(run.version, glob)
