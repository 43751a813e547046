"""The SQLite eval store: `eval_results`, `eval_judgments` and `eval_overrides` in the file
I5's URL names (`TETHER_EVALS_DATABASE_URL`, else the shared database).

A result's cohorts and configuration are JSON columns: the gate reads a cohort's window with
`json_each`, newest first by insertion order. The tables may share a file with other
interfaces' tables; they have no foreign key to any of them.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from tether.foundation.evals.contract import CaseResult, EvalConfig, Judgment, Override
from tether.foundation.sqlite import open_sqlite, sqlite_file

_SCHEMA = """
CREATE TABLE IF NOT EXISTS eval_results (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    eval_run TEXT NOT NULL,
    ref TEXT NOT NULL,
    workflow TEXT NOT NULL,
    case_id TEXT NOT NULL,
    cohorts TEXT NOT NULL,
    score REAL NOT NULL,
    passed INTEGER NOT NULL,
    metrics TEXT NOT NULL,
    reason TEXT NOT NULL,
    error TEXT,
    config TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS eval_results_ref ON eval_results (workflow, ref, seq);
CREATE TABLE IF NOT EXISTS eval_judgments (
    key TEXT PRIMARY KEY,
    score REAL NOT NULL,
    reason TEXT NOT NULL,
    judge TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS eval_overrides (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    baseline TEXT NOT NULL,
    candidate TEXT NOT NULL,
    subject TEXT NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL
);
"""
_COLUMNS = (
    "eval_run, ref, workflow, case_id, cohorts, score, passed, metrics, reason, error, config, "
    "recorded_at"
)


def _result(r: sqlite3.Row) -> CaseResult:
    return CaseResult(
        eval_run=r["eval_run"],
        ref=r["ref"],
        workflow=r["workflow"],
        case_id=r["case_id"],
        cohorts=tuple(json.loads(r["cohorts"])),
        score=r["score"],
        passed=bool(r["passed"]),
        metrics=json.loads(r["metrics"]),
        reason=r["reason"],
        error=r["error"],
        config=EvalConfig.model_validate_json(r["config"]),
        recorded_at=datetime.fromisoformat(r["recorded_at"]),
    )


class SqliteEvalStore:
    """I5 on SQLite; `url` is `sqlite:///path/to/file.db`."""

    def __init__(self, url: str) -> None:
        self.path = sqlite_file(url, "evals")
        self._lock = threading.Lock()
        self._conn = open_sqlite(self.path, "the eval results", _SCHEMA)
        self._conn.row_factory = sqlite3.Row

    @classmethod
    def from_settings(cls, settings: Any) -> SqliteEvalStore:
        return cls(settings.database_url_for("evals"))

    def record(self, results: Sequence[CaseResult]) -> None:
        now = datetime.now(UTC).isoformat()
        rows = [
            (
                r.eval_run, r.ref, r.workflow, r.case_id, json.dumps(list(r.cohorts)), r.score,
                int(r.passed), json.dumps(r.metrics), r.reason, r.error,
                r.config.model_dump_json(), now,
            )
            for r in results
        ]  # fmt: skip
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(
                    f"INSERT INTO eval_results ({_COLUMNS}) VALUES ({', '.join('?' * 12)})", rows
                )
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def window(
        self, workflow: str, ref: str, cohort: str | None, n: int, eval_run: str | None = None
    ) -> list[CaseResult]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM eval_results WHERE workflow = ? AND ref = ? "
                "AND (? IS NULL OR EXISTS (SELECT 1 FROM json_each(cohorts) WHERE value = ?)) "
                "AND (? IS NULL OR eval_run = ?) ORDER BY seq DESC LIMIT ?",
                (workflow, ref, cohort, cohort, eval_run, eval_run, n),
            ).fetchall()
        return [_result(r) for r in rows]

    def latest_run(self, workflow: str, ref: str) -> str | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT eval_run FROM eval_results WHERE workflow = ? AND ref = ? "
                "ORDER BY seq DESC LIMIT 1",
                (workflow, ref),
            ).fetchone()
        return None if row is None else str(row[0])

    def recent(self, n: int) -> list[CaseResult]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM eval_results ORDER BY seq DESC LIMIT ?", (n,)
            ).fetchall()
        return [_result(r) for r in rows]

    def workflows(self, refs: Sequence[str]) -> list[str]:
        if not refs:
            return []
        with self._lock:
            rows = self._conn.execute(
                "SELECT DISTINCT workflow FROM eval_results "
                f"WHERE ref IN ({', '.join('?' * len(refs))}) ORDER BY 1",
                list(refs),
            ).fetchall()
        return [str(r[0]) for r in rows]

    def cohorts(self, workflow: str, refs: Sequence[str]) -> list[str]:
        if not refs:
            return []
        with self._lock:
            rows = self._conn.execute(
                "SELECT DISTINCT c.value FROM eval_results, json_each(eval_results.cohorts) AS c "
                f"WHERE workflow = ? AND ref IN ({', '.join('?' * len(refs))}) ORDER BY 1",
                [workflow, *refs],
            ).fetchall()
        return [str(r[0]) for r in rows]

    def judgment(self, key: str) -> Judgment | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT score, reason, judge FROM eval_judgments WHERE key = ?", (key,)
            ).fetchone()
        return None if row is None else Judgment(score=row[0], reason=row[1], judge=row[2])

    def put_judgment(self, key: str, judgment: Judgment) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO eval_judgments (key, score, reason, judge) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (key) DO NOTHING",
                (key, judgment.score, judgment.reason, judgment.judge),
            )

    def add_override(self, override: Override) -> None:
        o = override
        with self._lock:
            self._conn.execute(
                "INSERT INTO eval_overrides (baseline, candidate, subject, reason, at) "
                "VALUES (?, ?, ?, ?, ?)",
                (o.baseline, o.candidate, o.subject, o.reason, o.at.isoformat()),
            )

    def overrides(self, candidate: str) -> list[Override]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT baseline, candidate, subject, reason, at FROM eval_overrides "
                "WHERE candidate = ? ORDER BY seq",
                (candidate,),
            ).fetchall()
        return [
            Override(
                baseline=r[0], candidate=r[1], subject=r[2], reason=r[3],
                at=datetime.fromisoformat(r[4]),
            )
            for r in rows
        ]  # fmt: skip

    def close(self) -> None:
        self._conn.close()
