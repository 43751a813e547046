"""The runs list reads one index range a page, on both databases: the plan of the exact
statement `list_runs` runs walks an index ending in (created_at, id) and sorts nothing, so the
first page costs the same with 100,000 runs as with 100 (bench workload `api` measures it).
With a filter the planner may pick the filter's own index or walk runs_by_created and filter
as it goes (PostgreSQL does when most runs match); either reads about one page of rows."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.postgres.server import fresh_schema
from tether.foundation.checkpoint.backends.postgres import PostgresCheckpointer
from tether.foundation.checkpoint.backends.sqlite import SqliteCheckpointer
from tether.foundation.checkpoint.contract import RunFilter, RunStatus

PAGES = {
    "first page": (RunFilter(limit=51), "runs_by_created"),
    "a later page": (RunFilter(limit=51, before=(2e5, "r-100")), "runs_by_created"),
    "by status": (RunFilter(statuses=[RunStatus.PENDING], limit=51), "runs_by_status_created"),
    "by workflow": (RunFilter(workflow="w3", limit=51), "runs_by_workflow_created"),
    "by two statuses": (
        RunFilter(statuses=[RunStatus.PENDING, RunStatus.COMPLETED], limit=51),
        "runs_by_status_created",
    ),
}
ROWS = 5000


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[SqliteCheckpointer]:
    cp = SqliteCheckpointer(f"sqlite:///{tmp_path / 'runs.db'}")
    with cp._db.transaction() as c:
        c.executemany(
            "INSERT INTO runs (id, workflow, version, status, input, created_at, updated_at) "
            "VALUES (?, ?, '1.0.0', ?, '{}', ?, ?)",
            [(f"r-{i}", f"w{i % 10}", "pending" if i % 3 else "completed", i, i)
             for i in range(ROWS)],
        )  # fmt: skip
        c.execute("ANALYZE")
    yield cp
    cp.close()


@pytest.fixture
def postgres() -> Iterator[PostgresCheckpointer]:
    with fresh_schema("plan") as (url, schema):
        try:
            cp = PostgresCheckpointer(url, schema=schema)
        except Exception as e:  # the server is not running here
            pytest.skip(f"PostgreSQL at {url} is unreachable: {e}")
        cp._db.one(
            "INSERT INTO runs (id, workflow, version, status, input, created_at, updated_at) "
            "SELECT 'r-' || i, 'w' || (i %% 10), '1.0.0', "
            "CASE WHEN i %% 3 = 0 THEN 'completed' ELSE 'pending' END, '{}', i, i "
            f"FROM generate_series(0, {ROWS - 1}) AS i"
        )
        cp._db.one("ANALYZE runs")
        yield cp
        cp.close()


@pytest.mark.parametrize("page", PAGES)
def test_sqlite_lists_a_page_from_one_index_range_without_sorting(
    sqlite: SqliteCheckpointer, page: str
) -> None:
    query, index = PAGES[page]
    sql, args = sqlite.list_query(query)
    steps = [r[3] for r in sqlite._db.one(f"EXPLAIN QUERY PLAN {sql}", args)]
    plan = " / ".join(steps)
    assert re.search(rf"USING INDEX ({index}|runs_by_created)\b", plan), plan
    # Only a status's own page (at most `limit` rows, already cut by its index range) may
    # be sorted again for the merge; never the runs table's rows.
    sorted_after = [steps[i - 1] for i, step in enumerate(steps) if "TEMP B-TREE" in step]
    assert all(re.fullmatch(r"SCAN s\d+", step) for step in sorted_after), plan


@pytest.mark.parametrize("page", PAGES)
def test_postgres_lists_a_page_from_one_index_range_without_sorting(
    postgres: PostgresCheckpointer, page: str
) -> None:
    query, index = PAGES[page]
    sql, args = postgres.list_query(query)
    plan = " / ".join(r["QUERY PLAN"] for r in postgres._db.one(f"EXPLAIN {sql}", args))
    assert re.search(rf"Index Scan Backward using ({index}|runs_by_created)\b", plan), plan
    assert "Sort  (" not in plan, plan  # a Merge Append of index ranges is no sort
