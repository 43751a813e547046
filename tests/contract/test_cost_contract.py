"""I11 contract: every cost store keeps one row per (run, step) and rolls totals up exactly.

PostgreSQL runs against the server at 127.0.0.1:5432 (db `test`), each test in its own schema;
it is skipped, saying why, only when that server is unreachable.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from tests.contract.backends import environment, installed
from tether.foundation.cost.attributor import CostAttributor
from tether.foundation.cost.backends.postgres import PostgresCostStore
from tether.foundation.cost.contract import CostRecord, CostStore, CostTotal
from tether.foundation.cost.memory import MemoryCostStore
from tether.foundation.loader import open_backend
from tether.settings import Settings

PG_ADMIN = os.environ.get("TETHER_TEST_POSTGRES", "postgresql://root@127.0.0.1:5432/test")


@pytest.fixture
def pg_url() -> Iterator[str]:
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as e:
        pytest.skip(f"PostgreSQL at {PG_ADMIN} is unreachable: {e}")
    schema = f"cost_{uuid.uuid4().hex[:12]}"
    admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{PG_ADMIN}?options=-csearch_path%3D{schema}"
    finally:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


@pytest.fixture(params=installed("cost"))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CostStore]:
    with environment(request.param, "cost", tmp_path) as (settings, options):
        opened = open_backend("cost", request.param, CostStore, settings, **options)
        yield opened
        opened.close()


def _row(
    run: str, step: str, usd: str, *, workflow: str = "triage@1.0.0", priced: bool = True
) -> CostRecord:
    return CostRecord(
        run_id=run,
        workflow=workflow,
        step_id=step,
        backend="anthropic",
        provider="anthropic",
        model="claude-sonnet-4-6",
        input_tokens=100,
        output_tokens=20,
        cache_read_tokens=40,
        usd=Decimal(usd),
        priced=priced,
    )


def test_recorded_call_reads_back_with_exact_dollars_and_a_timestamp(store: CostStore) -> None:
    stored = store.record(_row("r1", "0.1", "0.000000075"))
    assert stored.usd == Decimal("0.000000075")
    assert stored.recorded_at is not None
    assert store.calls("r1") == [stored]


def test_recording_a_step_again_keeps_the_first_row(store: CostStore) -> None:
    first = store.record(_row("r1", "0.1", "0.5"))
    again = store.record(_row("r1", "0.1", "9.0"))
    assert again == first
    assert store.run_totals(["r1"])["r1"].usd == Decimal("0.5")


def test_run_totals_sum_each_run_and_count_unpriced_calls(store: CostStore) -> None:
    for step, usd in (("0.1", "0.000000075"), ("0.2", "0.000000075"), ("0.3", "0.000000075")):
        store.record(_row("r1", step, usd))
    store.record(_row("r1", "0.4", "0", priced=False))
    store.record(_row("r2", "0.1", "1.25"))

    totals = store.run_totals(["r1", "r2", "never-ran"])

    assert totals["r1"] == CostTotal(
        calls=4, input_tokens=400, output_tokens=80, usd=Decimal("0.000000225"), unpriced_calls=1
    )
    assert totals["r2"].usd == Decimal("1.25")
    assert totals["never-ran"] == CostTotal()


def test_calls_come_back_in_recorded_order_for_that_run_only(store: CostStore) -> None:
    for step in ("0.2", "0.10", "0.1"):
        store.record(_row("r1", step, "0.01"))
    store.record(_row("r2", "0.1", "0.01"))
    assert [c.step_id for c in store.calls("r1")] == ["0.2", "0.10", "0.1"]


def test_workflow_total_spans_runs_of_that_workflow_only(store: CostStore) -> None:
    store.record(_row("r1", "0.1", "0.10"))
    store.record(_row("r2", "0.1", "0.15"))
    store.record(_row("r3", "0.1", "7.00", workflow="report@2.0.0"))
    total = store.workflow_total("triage@1.0.0")
    assert (total.calls, total.usd) == (2, Decimal("0.25"))


def test_daily_totals_sum_each_workflow_on_each_utc_day_from_the_day_asked(
    store: CostStore,
) -> None:
    store.record(_row("r1", "0.1", "0.10"))
    store.record(_row("r2", "0.1", "0.15", priced=False))
    store.record(_row("r3", "0.1", "7.00", workflow="report@2.0.0"))
    recorded = store.calls("r1")[0].recorded_at
    assert recorded is not None
    today = recorded.astimezone(UTC).date()  # the store's day, even if a test spans midnight
    days = store.daily_totals(today - timedelta(days=7))
    assert [(d.day, d.workflow, d.cost.calls, d.cost.usd, d.cost.unpriced_calls) for d in days] == [
        (today, "report@2.0.0", 1, Decimal("7.00"), 0),
        (today, "triage@1.0.0", 2, Decimal("0.25"), 1),
    ]
    assert store.daily_totals(today + timedelta(days=1)) == []


def test_settings_pick_the_store_by_the_cost_database_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TETHER_DATABASE_URL", raising=False)
    monkeypatch.setenv("TETHER_COST_DATABASE_URL", f"sqlite:///{tmp_path / 'own-cost.db'}")
    attributor = CostAttributor.from_settings(Settings(data_dir=tmp_path / "data"))
    attributor.store.record(_row("r1", "0.1", "0.01"))
    attributor.close()

    with sqlite3.connect(tmp_path / "own-cost.db") as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        foreign_keys = conn.execute(
            "SELECT * FROM pragma_foreign_key_list('cost_calls')"
        ).fetchall()
    assert "cost_calls" in tables and foreign_keys == []
    assert not (tmp_path / "data" / "tether.db").exists()


def test_memory_url_gives_the_in_process_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_COST_DATABASE_URL", "memory://")
    assert isinstance(CostAttributor.from_settings(Settings()).store, MemoryCostStore)


def test_postgres_url_gives_the_postgres_store(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TETHER_COST_DATABASE_URL", pg_url)
    attributor = CostAttributor.from_settings(Settings())
    assert isinstance(attributor.store, PostgresCostStore)
    attributor.close()
