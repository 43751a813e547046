"""Cron schedules in the in-memory I2 double: a dict, and the compare-and-set under the lock."""

from __future__ import annotations

from tether.foundation.checkpoint.contract import Schedule
from tether.foundation.checkpoint.memory.state import MemoryState


class MemorySchedules(MemoryState):
    """The schedule half of the I2 contract, mixed into MemoryCheckpointer."""

    def put_schedule(self, schedule: Schedule) -> None:
        with self._lock:
            self._schedules[schedule.name] = schedule

    def schedules(self) -> list[Schedule]:
        with self._lock:
            return sorted(self._schedules.values(), key=lambda s: s.name)

    def delete_schedule(self, name: str) -> bool:
        with self._lock:
            return self._schedules.pop(name, None) is not None

    def advance_schedule(self, name: str, expected_next_at: float, next_at: float) -> bool:
        with self._lock:
            current = self._schedules.get(name)
            if current is None or current.next_at != expected_next_at:
                return False
            self._schedules[name] = current.model_copy(update={"next_at": next_at})
            return True
