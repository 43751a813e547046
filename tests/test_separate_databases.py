"""No foreign key crosses two interfaces' tables: point each interface at its own database by
changing one connection string, run both reference agents end to end, and find each
interface's tables only in its own database."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from tether import RunStatus, Settings, Tether
from tether.foundation.identity.contract import Identity

INTERFACES = ("checkpoint", "tools", "cost", "policy", "limits", "hitl")


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {r[0] for r in rows if not r[0].startswith("sqlite_")}


def test_each_interface_runs_on_its_own_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for iface in INTERFACES:
        monkeypatch.setenv(
            f"TETHER_{iface.upper()}_DATABASE_URL", f"sqlite:///{tmp_path}/{iface}.db"
        )
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
    found = {iface: tables(tmp_path / f"{iface}.db") for iface in INTERFACES}
    assert {"runs", "journal"} <= found["checkpoint"]
    assert "tool_call_results" in found["tools"] and "hitl_requests" in found["hitl"]
    assert found["cost"] and found["policy"] and found["limits"]
    for iface, names in found.items():  # no interface's table lives in another's database
        others = set().union(*(found[o] for o in INTERFACES if o != iface))
        assert not names & others, (iface, names & others)
    assert not (tmp_path / ".tether" / "tether.db").exists()  # nothing fell back to the default
