"""The embedded default I2 backend: one SQLite file in WAL mode, safe with several worker
processes on one machine. `schema` lays out and migrates the tables, `connection` owns
connections and errors, `checkpointer` the dialect, claims and new runs (the run-state control
flow is `checkpoint/sql/`'s), `housekeeping` pruning and blob references, `schedules` cron."""

from tether.foundation.checkpoint.backends.sqlite.checkpointer import SqliteCheckpointer

__all__ = ["SqliteCheckpointer"]
