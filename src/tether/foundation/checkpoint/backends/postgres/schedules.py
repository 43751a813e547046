"""Cron schedules in PostgreSQL: stored rows, and the compare-and-set that lets exactly one of
many workers fire a tick.

`advance_schedule` is one `UPDATE ... WHERE next_at = <expected>`: under PostgreSQL's row lock
the second worker re-reads the row after the first commits, finds `next_at` moved on, and
updates nothing. (Each tick's run also carries the key `schedule:NAME:TICK`, so even a lost
race could not start it twice.)
"""

from __future__ import annotations

from tether.foundation.checkpoint.backends.postgres.database import Database
from tether.foundation.checkpoint.contract import Schedule

_FIELDS = ("name", "cron", "workflow", "input", "catchup", "next_at", "created_at")


class PostgresSchedules:
    """The schedule half of the I2 contract, mixed into PostgresCheckpointer."""

    _db: Database

    def put_schedule(self, schedule: Schedule) -> None:
        self._db.one(
            f"INSERT INTO schedules ({', '.join(_FIELDS)}) VALUES ({', '.join(['%s'] * 7)}) "
            "ON CONFLICT (name) DO UPDATE SET "
            + ", ".join(f"{f} = EXCLUDED.{f}" for f in _FIELDS[1:]),
            [getattr(schedule, f) for f in _FIELDS],
        )

    def schedules(self) -> list[Schedule]:
        rows = self._db.one(f"SELECT {', '.join(_FIELDS)} FROM schedules ORDER BY name")
        return [Schedule(**r) for r in rows]

    def delete_schedule(self, name: str) -> bool:
        return bool(self._db.one("DELETE FROM schedules WHERE name = %s RETURNING name", (name,)))

    def advance_schedule(self, name: str, expected_next_at: float, next_at: float) -> bool:
        return bool(
            self._db.one(
                "UPDATE schedules SET next_at = %s WHERE name = %s AND next_at = %s RETURNING name",
                (next_at, name, expected_next_at),
            )
        )
