"""The PostgreSQL eval store (psycopg 3): `eval_results`, `eval_judgments` and `eval_overrides`
in the connection's schema.

A result's cohorts are a TEXT[] (the window filters with `= ANY`), its metrics and
configuration JSONB. The tables have no foreign key to any other interface's tables, so I5 can
be pointed at its own database with one URL.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tether.errors import DatabaseUnavailable
from tether.foundation.evals.contract import CaseResult, Judgment, Override
from tether.settings import redact_dsn

_SCHEMA = """
CREATE TABLE IF NOT EXISTS eval_results (
    seq BIGSERIAL PRIMARY KEY,
    eval_run TEXT NOT NULL,
    ref TEXT NOT NULL,
    workflow TEXT NOT NULL,
    case_id TEXT NOT NULL,
    cohorts TEXT[] NOT NULL,
    score DOUBLE PRECISION NOT NULL,
    passed BOOLEAN NOT NULL,
    metrics JSONB NOT NULL,
    reason TEXT NOT NULL,
    error TEXT,
    config JSONB NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS eval_results_ref ON eval_results (workflow, ref, seq);
CREATE TABLE IF NOT EXISTS eval_judgments (
    key TEXT PRIMARY KEY,
    score DOUBLE PRECISION NOT NULL,
    reason TEXT NOT NULL,
    judge TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS eval_overrides (
    seq BIGSERIAL PRIMARY KEY,
    baseline TEXT NOT NULL,
    candidate TEXT NOT NULL,
    subject TEXT NOT NULL,
    reason TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL
);
"""
_FIELDS = (
    "eval_run", "ref", "workflow", "case_id", "cohorts", "score", "passed", "metrics", "reason",
    "error", "config",
)  # fmt: skip
_COLUMNS = ", ".join((*_FIELDS, "recorded_at"))


class PostgresEvalStore:
    """I5 on PostgreSQL; `url` is a libpq URL (`postgresql://user@host/db?options=...`)."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._lock = threading.Lock()
        try:
            self._conn = psycopg.connect(url, autocommit=True, row_factory=dict_row)
            self._conn.execute(_SCHEMA)
        except psycopg.Error as e:
            raise DatabaseUnavailable(f"eval database {redact_dsn(url)} cannot be used: {e}") from e

    @classmethod
    def from_settings(cls, settings: Any) -> PostgresEvalStore:
        return cls(settings.database_url_for("evals"))

    @contextmanager
    def _cursor(self) -> Iterator[psycopg.Cursor[dict[str, Any]]]:
        with self._lock:
            try:
                with self._conn.cursor() as cur:
                    yield cur
            except psycopg.OperationalError as e:
                raise DatabaseUnavailable(
                    f"eval database {redact_dsn(self._url)} cannot be used: {e}"
                ) from e

    def record(self, results: Sequence[CaseResult]) -> None:
        rows = [
            {
                **r.model_dump(include=set(_FIELDS) - {"cohorts", "metrics", "config"}),
                "cohorts": list(r.cohorts),
                "metrics": Jsonb(r.metrics),
                "config": Jsonb(r.config.model_dump(mode="json")),
            }
            for r in results
        ]
        with self._lock, self._conn.transaction(), self._conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO eval_results ({', '.join(_FIELDS)}) "
                f"VALUES ({', '.join(f'%({f})s' for f in _FIELDS)})",
                rows,
            )

    def window(
        self, workflow: str, ref: str, cohort: str | None, n: int, eval_run: str | None = None
    ) -> list[CaseResult]:
        with self._cursor() as cur:
            cur.execute(
                f"SELECT {_COLUMNS} FROM eval_results WHERE workflow = %s AND ref = %s "
                "AND (%s::text IS NULL OR %s = ANY(cohorts)) "
                "AND (%s::text IS NULL OR eval_run = %s) ORDER BY seq DESC LIMIT %s",
                (workflow, ref, cohort, cohort, eval_run, eval_run, n),
            )
            return [CaseResult.model_validate(r) for r in cur.fetchall()]

    def latest_run(self, workflow: str, ref: str) -> str | None:
        with self._cursor() as cur:
            cur.execute(
                "SELECT eval_run FROM eval_results WHERE workflow = %s AND ref = %s "
                "ORDER BY seq DESC LIMIT 1",
                (workflow, ref),
            )
            row = cur.fetchone()
        return None if row is None else str(row["eval_run"])

    def recent(self, n: int) -> list[CaseResult]:
        with self._cursor() as cur:
            cur.execute(f"SELECT {_COLUMNS} FROM eval_results ORDER BY seq DESC LIMIT %s", (n,))
            return [CaseResult.model_validate(r) for r in cur.fetchall()]

    def workflows(self, refs: Sequence[str]) -> list[str]:
        with self._cursor() as cur:
            cur.execute(
                "SELECT DISTINCT workflow FROM eval_results WHERE ref = ANY(%s) ORDER BY 1",
                (list(refs),),
            )
            return [str(r["workflow"]) for r in cur.fetchall()]

    def cohorts(self, workflow: str, refs: Sequence[str]) -> list[str]:
        with self._cursor() as cur:
            cur.execute(
                "SELECT DISTINCT unnest(cohorts) AS cohort FROM eval_results "
                "WHERE workflow = %s AND ref = ANY(%s) ORDER BY 1",
                (workflow, list(refs)),
            )
            return [str(r["cohort"]) for r in cur.fetchall()]

    def judgment(self, key: str) -> Judgment | None:
        with self._cursor() as cur:
            cur.execute("SELECT score, reason, judge FROM eval_judgments WHERE key = %s", (key,))
            row = cur.fetchone()
        return None if row is None else Judgment.model_validate(row)

    def put_judgment(self, key: str, judgment: Judgment) -> None:
        with self._cursor() as cur:
            cur.execute(
                "INSERT INTO eval_judgments (key, score, reason, judge) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (key) DO NOTHING",
                (key, judgment.score, judgment.reason, judgment.judge),
            )

    def add_override(self, override: Override) -> None:
        with self._cursor() as cur:
            cur.execute(
                "INSERT INTO eval_overrides (baseline, candidate, subject, reason, at) "
                "VALUES (%(baseline)s, %(candidate)s, %(subject)s, %(reason)s, %(at)s)",
                override.model_dump(),
            )

    def overrides(self, candidate: str) -> list[Override]:
        with self._cursor() as cur:
            cur.execute(
                "SELECT baseline, candidate, subject, reason, at FROM eval_overrides "
                "WHERE candidate = %s ORDER BY seq",
                (candidate,),
            )
            return [Override.model_validate(r) for r in cur.fetchall()]

    def close(self) -> None:
        self._conn.close()
