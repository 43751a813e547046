"""The kill -9 receipt on PostgreSQL as on SQLite: a worker process is SIGKILLed inside a
step; a second worker resumes the run and no step whose result was committed runs again
(counted in a side-effect file, not in the journal)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.postgres.server import fresh_schema
from tests.runtime.test_crash_resume import kill_mid_run_and_resume
from tether import Tether


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_kill_minus_9_mid_run_resumes_without_redoing_steps(
    backend: str, make_tether: Callable[..., Tether], tmp_path: Path
) -> None:
    if backend == "sqlite":
        kill_mid_run_and_resume(make_tether("sqlite"), tmp_path / ".tether", tmp_path / "log")
        return
    with fresh_schema("kill") as (url, schema):
        t = make_tether("postgres", checkpoint_database_url=url, checkpoint_schema=schema)
        workers = {
            "TETHER_CHECKPOINT": "postgres",
            "TETHER_CHECKPOINT_DATABASE_URL": url,
            "TETHER_CHECKPOINT_SCHEMA": schema,
        }
        kill_mid_run_and_resume(t, tmp_path / ".tether", tmp_path / "log", workers)
        t.close()
