"""I5 keeps its tables in its own database when `TETHER_EVALS_DATABASE_URL` names one: an eval
run and its gate keep no run in the shared database (the cases' runs stay in memory; the
judge's calls are audited, counted and priced there, as any model call is), and nothing else
lands in I5's."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.evals.conftest import Cli


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {r[0] for r in rows if not r[0].startswith("sqlite_")}


def test_eval_results_live_only_in_the_evals_database(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TETHER_EVALS_DATABASE_URL", f"sqlite:///{tmp_path}/evals.db")
    monkeypatch.setenv("TETHER_DATABASE_URL", f"sqlite:///{tmp_path}/shared.db")
    assert cli("run", "research_report", "--ref", "main").exit_code == 0
    assert cli("gate", "--baseline", "main", "--candidate", "main").exit_code == 0
    assert _tables(tmp_path / "evals.db") == {"eval_results", "eval_judgments", "eval_overrides"}
    # the cases' runs stayed in memory; what the shared database got is the judge's calls,
    # guarded and priced like any model call: I9's audit, I10's counters, I11's costs
    assert _tables(tmp_path / "shared.db") == {"guard_audit", "limits_state", "cost_calls"}
