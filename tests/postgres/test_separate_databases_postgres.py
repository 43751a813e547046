"""No foreign key crosses two interfaces' tables, on PostgreSQL too: I1 (tools), I2
(checkpoint), I5 (evals), I6 (hitl), I9's audit (policy) and I11 (cost) each on a PostgreSQL
database of its own and I10 (limits) on its own Redis database number, each reached by its one
TETHER_<IFACE>_DATABASE_URL; both reference agents run end to end and each interface's
tables are found only in its own database."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.postgres.server import server_url
from tether import RunStatus, Settings, Tether
from tether.foundation.identity.contract import Identity

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

ON_POSTGRES = ("checkpoint", "tools", "cost", "policy", "evals", "hitl")
REDIS_DB = 7


def _with_database(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + f"/{name}"


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema NOT IN "
            "('pg_catalog', 'information_schema')"
        ).fetchall()
    return {r[0] for r in rows}


@pytest.fixture
def databases() -> Iterator[dict[str, str]]:
    """One fresh database per interface on the test server, dropped afterwards."""
    admin_url = server_url()
    names = {iface: f"t_{iface}_{uuid.uuid4().hex[:8]}" for iface in ON_POSTGRES}
    with psycopg.connect(admin_url, autocommit=True) as admin:
        for name in names.values():
            admin.execute(f"CREATE DATABASE {name}")
    try:
        yield {iface: _with_database(admin_url, name) for iface, name in names.items()}
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            for name in names.values():
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_each_interface_runs_on_its_own_postgres_database(
    databases: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    redis = pytest.importorskip("redis")
    try:
        redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB).flushdb()
    except redis.exceptions.ConnectionError as e:
        pytest.skip(f"Redis unreachable ({e})")
    for iface, url in databases.items():
        monkeypatch.setenv(f"TETHER_{iface.upper()}_DATABASE_URL", url)
    monkeypatch.setenv("TETHER_LIMITS_DATABASE_URL", f"redis://127.0.0.1:6379/{REDIS_DB}")
    t = Tether(Settings(data_dir=tmp_path / ".tether", poll_interval=0.02, trace="memory"))
    try:
        report = t.run(t.start("research_report", {"topic": "leases", "review_pause_seconds": 0}))
        triage = t.start("support_triage", {"ticket_id": "T-9", "text": "everything is down"})
        stop = threading.Event()
        t.run(triage, stop=stop, on_wait=lambda _run: stop.set())
        (request,) = t.approvals(run_id=triage)  # I6, in a database of its own
        t.decide(request.id, "approved", identity=Identity(subject="ana", roles=("support-leads",)))
        done = t.run(triage)
    finally:
        t.close()
    assert report.status is RunStatus.COMPLETED and done.status is RunStatus.COMPLETED
    found = {iface: _tables(url) for iface, url in databases.items()}
    assert {"runs", "journal"} <= found["checkpoint"]
    assert "tool_call_results" in found["tools"] and "hitl_requests" in found["hitl"]
    assert "cost_calls" in found["cost"] and "guard_audit" in found["policy"]
    for iface, names in found.items():  # no interface's table lives in another's database
        others = set().union(*(found[o] for o in ON_POSTGRES if o != iface))
        assert not names & others, (iface, names & others)
    assert redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB).dbsize() > 0  # I10's counters
    assert not (tmp_path / ".tether" / "tether.db").exists()  # nothing fell back to the default
