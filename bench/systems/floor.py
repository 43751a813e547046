"""The floor: what one durable step costs at the least — a raw single-row INSERT + COMMIT.

Same drivers as tether (sqlite3, psycopg), same durability settings (SQLite WAL +
`synchronous=FULL`, and tether's WAL checkpoint size; PostgreSQL's defaults), and a row shaped
like a journal entry, so the ratio tether/floor is the price of everything tether does around
the commit, not of how the database is configured.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import time
from typing import Any

from bench.env import Env
from bench.measure import Sample, Timer
from bench.processes import run_pool
from tether.foundation.sqlite import WAL_AUTOCHECKPOINT

_TABLE = """CREATE TABLE IF NOT EXISTS journal (
    run_id TEXT NOT NULL, step_id TEXT NOT NULL, attempt INTEGER NOT NULL, kind TEXT NOT NULL,
    name TEXT NOT NULL, status TEXT NOT NULL, value TEXT, error TEXT, input TEXT, ref TEXT,
    started_at DOUBLE PRECISION NOT NULL, finished_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (run_id, step_id, attempt))"""


class _Db:
    """One connection in autocommit: every `insert` is its own INSERT + COMMIT."""

    def __init__(self, env: Env, url: str) -> None:
        self.postgres = env.backend == "postgres"
        if self.postgres:
            import psycopg

            self.conn: Any = psycopg.connect(url, autocommit=True)
            self.sql = "INSERT INTO journal VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
        else:
            self.conn = sqlite3.connect(url, isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT}")
            self.conn.execute(f"PRAGMA synchronous={env.sqlite_synchronous}")
            self.conn.execute("PRAGMA busy_timeout=10000")
            self.sql = "INSERT INTO journal VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
        self.conn.execute(_TABLE)

    def insert(self, run_id: str, step: int, value: int) -> None:
        now = time.time()
        row = (
            run_id,
            str(step + 1),
            1,
            "step",
            "add_one",
            "ok",
            json.dumps(value),
            None,
            json.dumps([step]),
            None,
            now,
            now,
        )
        self.conn.execute(self.sql, row)

    def count(self, sql: str) -> int:
        return int(self.conn.execute(sql).fetchone()[0])


def _url(env: Env) -> str:
    if env.backend == "postgres":
        return env.fresh_postgres()
    return str(env.sqlite_path())


def seq(env: Env, p: dict[str, Any]) -> Sample:
    db = _Db(env, _url(env))
    total = 0
    with Timer() as t:
        for i in range(p["n"]):
            value = i + 1
            db.insert("run-1", i, value)
            total += value
    observed = {
        "total": total,
        "journaled": db.count("SELECT count(*) FROM journal"),
        "executed": p["n"],
    }
    return Sample(t.wall_s, t.cpu_s, p["n"], observed)


def agent(env: Env, p: dict[str, Any]) -> Sample:
    """Two commits a turn: the model call's result, then the tool call's."""
    db = _Db(env, _url(env))
    total = 0
    with Timer() as t:
        for r in range(p["runs"]):
            for i in range(p["turns"]):
                db.insert(f"run-{r}", 2 * i, i)
                db.insert(f"run-{r}", 2 * i + 1, i + 1)
                total += i + 1
    calls = db.count("SELECT count(*) FROM journal")
    return Sample(t.wall_s, t.cpu_s, p["runs"] * p["turns"], {"total": total, "calls": calls})


fanout = seq  # with no runtime there is nothing to fan out: the floor is the same n commits


def _batch_prepare(env_text: str, url: str, runs: int, steps: int, index: int, count: int) -> Any:
    env = Env.load(env_text)
    return _Db(env, url), [r for r in range(runs) if r % count == index], steps


def _batch_work(state: Any) -> dict[str, int]:
    db, mine, steps = state
    executed = 0
    for r in mine:
        for i in range(steps):
            db.insert(f"run-{r}", i, i + 1)
            executed += 1
    return {"executed": executed}


def batch(env: Env, p: dict[str, Any]) -> Sample:
    url = _url(env)
    admin = _Db(env, url)
    prepare = functools.partial(_batch_prepare, env.dump(), url, p["runs"], p["steps"])
    pool = run_pool(prepare, _batch_work, p["workers"])
    journaled = admin.count("SELECT count(*) FROM journal")
    per_run = admin.count(
        "SELECT count(*) FROM (SELECT run_id FROM journal GROUP BY run_id "
        f"HAVING count(*) = {p['steps']}) AS complete"
    )
    observed = {"completed": per_run, "correct": per_run, "journaled": journaled, **pool.facts}
    return Sample(
        pool.wall_s, pool.cpu_s, p["runs"], observed, pool.peak_rss_kb, extra={"pid": os.getpid()}
    )


concurrency = batch  # one commit per step however many runs a process holds
