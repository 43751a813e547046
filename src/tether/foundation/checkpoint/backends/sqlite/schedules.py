"""Cron schedules in SQLite: stored rows, and the compare-and-set that lets exactly one of many
workers fire a tick.

`advance_schedule` is one `UPDATE ... WHERE next_at = <expected>`: SQLite runs one writer at a
time, so the second worker finds `next_at` moved on and updates nothing. (Each tick's run also
carries the key `schedule:NAME:TICK`, so even a lost race could not start it twice.)
"""

from __future__ import annotations

from tether.foundation.checkpoint.backends.sqlite.connection import SqliteDatabase
from tether.foundation.checkpoint.contract import Schedule

_FIELDS = ("name", "cron", "workflow", "input", "catchup", "next_at", "created_at")


class SqliteSchedules:
    """The schedule half of the I2 contract, mixed into SqliteCheckpointer."""

    _db: SqliteDatabase

    def put_schedule(self, schedule: Schedule) -> None:
        with self._db.transaction() as c:
            c.execute(
                f"INSERT OR REPLACE INTO schedules ({', '.join(_FIELDS)}) "
                f"VALUES ({', '.join('?' * len(_FIELDS))})",
                [getattr(schedule, f) for f in _FIELDS],
            )

    def schedules(self) -> list[Schedule]:
        rows = self._db.one(f"SELECT {', '.join(_FIELDS)} FROM schedules ORDER BY name")
        return [Schedule(**dict(r)) for r in rows]

    def delete_schedule(self, name: str) -> bool:
        return self._db.rowcount("DELETE FROM schedules WHERE name = ?", (name,)) == 1

    def advance_schedule(self, name: str, expected_next_at: float, next_at: float) -> bool:
        return (
            self._db.rowcount(
                "UPDATE schedules SET next_at = ? WHERE name = ? AND next_at = ?",
                (next_at, name, expected_next_at),
            )
            == 1
        )
