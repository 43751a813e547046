"""A tool_call_results table written before approvals were spent on intent rows gains the
`approval` column (I1 migration 1) when a new tether opens it, and keeps its rows."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

from tests.contract.backends import environment
from tether.foundation.loader import open_backend
from tether.foundation.tools.results import CallStatus, ToolCallRecord, ToolCallStore

OLD_TABLE = """
CREATE TABLE tool_call_results (
    run_id TEXT NOT NULL, step_id TEXT NOT NULL, attempt INTEGER NOT NULL, tool TEXT NOT NULL,
    args TEXT NOT NULL, args_hash TEXT NOT NULL, idempotency_key TEXT, status TEXT NOT NULL,
    started_at REAL NOT NULL, finished_at REAL, result TEXT, result_ref TEXT, error_type TEXT,
    error TEXT, interrupted BOOLEAN NOT NULL DEFAULT FALSE, resolution TEXT,
    PRIMARY KEY (run_id, step_id, attempt)
);
INSERT INTO tool_call_results (run_id, step_id, attempt, tool, args, args_hash, status,
    started_at, finished_at, result)
    VALUES ('old', '1', 1, 'add', '{}', 'h', 'finished', 1.0, 2.0, '3');
"""


@contextmanager
def old_table(backend: str, tmp_path: Path) -> Iterator[ToolCallStore]:
    with environment(backend, "tools", tmp_path) as (settings, _):
        url = settings.database_url_for("tools")
        if backend == "postgres":
            import psycopg

            with psycopg.connect(url, autocommit=True) as conn:
                for statement in OLD_TABLE.split(";"):
                    if statement.strip():
                        conn.execute(statement)
        else:
            path = Path(url.removeprefix("sqlite:///"))
            path.parent.mkdir(parents=True, exist_ok=True)
            with closing(sqlite3.connect(path)) as conn:
                conn.executescript(OLD_TABLE)
        store = open_backend("tool_results", backend, ToolCallStore, settings)
        yield store
        store.close()


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_an_old_table_gains_the_approval_column_and_keeps_its_rows(
    backend: str, tmp_path: Path
) -> None:
    with old_table(backend, tmp_path) as store:
        kept = store.lookup("old", "1")
        assert kept is not None and (kept.result, kept.approval) == ("3", None)
        intent = ToolCallRecord(
            run_id="new", step_id="2", attempt=1, tool="send", args={}, args_hash="h",
            idempotency_key=None, status=CallStatus.STARTED, started_at=3.0, approval="new:1",
        )  # fmt: skip
        row, created = store.begin(intent)
        assert created and store.lookup("new", "2") == row and row.approval == "new:1"


@pytest.mark.postgres
def test_worker_processes_starting_together_all_open_the_table(tmp_path: Path) -> None:
    """Four bench workers opening I1 at once on a fresh schema: CREATE TABLE IF NOT EXISTS
    raced into a duplicate type and three of them died."""
    from concurrent.futures import ThreadPoolExecutor

    with environment("postgres", "tools", tmp_path) as (settings, _):
        with ThreadPoolExecutor(8) as pool:
            opened = list(
                pool.map(
                    lambda _: open_backend("tool_results", "postgres", ToolCallStore, settings),
                    range(8),
                )
            )
        assert all(store.lookup("none", "1") is None for store in opened)
        for store in opened:
            store.close()
