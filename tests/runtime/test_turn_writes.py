"""The writes of an agent turn (issue 21's: one model call, one pure tool call) on SQLite, seen
through SQLite's own trace of every connection: only the two journal appends are flushed
(committed at synchronous=FULL); I1's intent and result, I9's audit rows, I10's admissions and
I11's cost row trail (synchronous=NORMAL), made durable by the append after them. A breaker
whose state did not change is not written, and no budget check is a transaction of its own."""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tether import Settings, Tether

TURNS = 3
# The turn's tables; the worker's heartbeat and host registry tick on their own clock.
TABLES = {"journal", "tool_call_results", "guard_audit", "limits_state", "cost_calls"}


@dataclass
class _Connection:
    synchronous: str = "FULL"  # what tether asks of every connection unless it says otherwise
    in_transaction: bool = False
    touched: bool = False  # its open transaction reached one of the turn's tables
    wrote: str | None = None  # the turn's table its open transaction wrote


@dataclass
class Trace:
    """While `on`: every statement on the turn's tables, and every commit that wrote one,
    flushed (its connection at synchronous=FULL) or trailing (NORMAL)."""

    on: bool = False
    statements: list[str] = field(default_factory=list)
    commits: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, table)
    transactions: int = 0  # BEGIN ... COMMIT on the turn's tables, reading or writing
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def saw(self, conn: _Connection, sql: str) -> None:
        words = sql.split()
        verb = words[0].upper() if words else ""
        squeezed = sql.replace(" ", "").lower()
        if squeezed.startswith("pragmasynchronous="):
            conn.synchronous = squeezed.split("=")[1].upper()
        elif verb == "BEGIN":
            conn.in_transaction, conn.touched, conn.wrote = True, False, None
        elif verb in ("COMMIT", "ROLLBACK"):
            if verb == "COMMIT" and conn.wrote is not None:
                self._commit(conn, conn.wrote)
            with self._lock:
                self.transactions += self.on and conn.touched
            conn.in_transaction = False
        table = _table(words)
        if table not in TABLES:
            return
        conn.touched = conn.in_transaction
        with self._lock:
            if self.on:
                self.statements.append(sql)
        if verb in ("INSERT", "UPDATE", "DELETE"):
            if conn.in_transaction:
                conn.wrote = conn.wrote or table
            else:
                self._commit(conn, table)  # autocommit: the statement is its transaction

    def _commit(self, conn: _Connection, table: str) -> None:
        kind = "trailing" if conn.synchronous in ("NORMAL", "1", "OFF", "0") else "flushed"
        with self._lock:
            if self.on:
                self.commits[kind, table] += 1

    def count(self, kind: str) -> dict[str, int]:
        return {table: n for (k, table), n in self.commits.items() if k == kind}


def _table(words: list[str]) -> str:
    upper = [w.upper() for w in words]
    for marker in ("INTO", "UPDATE", "FROM"):
        if marker in upper[:4]:
            return words[upper.index(marker) + 1]
    return ""


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch) -> Trace:
    trace, connect = Trace(), sqlite3.connect

    def traced_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)
        state = _Connection()
        conn.set_trace_callback(lambda sql: trace.saw(state, sql))
        return conn

    monkeypatch.setattr(sqlite3, "connect", traced_connect)
    return trace


@pytest.fixture
def agent(tmp_path: Path, traced: Trace) -> Iterator[Callable[..., None]]:
    """Runs the agent turn (`turn_flow`: a scripted model call, then a pure tool call on the
    default lane) n times in one run, in process."""
    replies = [str(i) for _ in range(4) for i in range(3 * TURNS)]
    t = Tether(
        Settings(
            workflows=["tests.runtime.turn_flow"], data_dir=tmp_path / ".tether",
            poll_interval=0.02, model_backends={"scripted": {"replies": replies}},
            model_routes={"turn": [{"backend": "scripted", "model": "s-1", "family": "test"}]},
        )
    )  # fmt: skip

    def run(turns: int, unsafe: bool = False) -> None:
        t.run(t.start("turn_agent", {"turns": turns, "unsafe": unsafe}))

    run(1)  # tables created, breaker row written, lanes warm
    yield run
    t.close()


def _per_turn(agent: Callable[..., None], traced: Trace, unsafe: bool = False) -> Trace:
    """What TURNS more turns cost: a run of 2*TURNS turns traced, less one of TURNS (so the
    run's own claim and completion cancel out)."""
    traced.on = True
    agent(TURNS, unsafe)
    short = Trace(
        statements=list(traced.statements),
        commits=Counter(traced.commits),
        transactions=traced.transactions,
    )
    traced.statements.clear()
    traced.commits.clear()
    traced.transactions = 0
    agent(2 * TURNS, unsafe)
    traced.on = False
    return Trace(
        statements=traced.statements[len(short.statements) :],
        commits=traced.commits - short.commits,
        transactions=traced.transactions - short.transactions,
    )


def test_a_turn_flushes_only_its_two_journal_appends(
    agent: Callable[..., None], traced: Trace
) -> None:
    turns = _per_turn(agent, traced)
    assert turns.count("flushed") == {"journal": 2 * TURNS}
    assert turns.count("trailing") == {
        "limits_state": 2 * TURNS,  # one admission per call, its budget check inside it
        "guard_audit": 2 * TURNS,  # one allow per call
        "tool_call_results": 2 * TURNS,  # the pure call's intent and its result
        "cost_calls": TURNS,
    }


def test_a_turn_whose_tool_is_unsafe_on_replay_flushes_its_intent_before_dispatch(
    agent: Callable[..., None], traced: Trace
) -> None:
    turns = _per_turn(agent, traced, unsafe=True)
    assert turns.count("flushed") == {"journal": 2 * TURNS, "tool_call_results": TURNS}
    assert turns.count("trailing") == {
        "limits_state": 2 * TURNS,
        "guard_audit": 2 * TURNS,
        "tool_call_results": TURNS,  # the result: the journal append after it is the record
        "cost_calls": TURNS,
    }


def test_a_turn_takes_one_transaction_per_admission_and_no_other(
    agent: Callable[..., None], traced: Trace
) -> None:
    turns = _per_turn(agent, traced)
    assert turns.transactions == 2 * TURNS  # the admissions; a closed breaker is one SELECT
    breaker_writes = [s for s in turns.statements if "INSERT" in s and "'breaker/" in s]
    assert breaker_writes == []
    assert not [s for s in turns.statements if s.startswith("SELECT") and "cost_calls" in s]
    budget_reads = [s for s in turns.statements if s.startswith("SELECT") and "'run/" in s]
    assert len(budget_reads) == 2 * TURNS  # each inside its admission's transaction


_TRAIL_AND_DIE = """
import os, signal, sys, time
from datetime import UTC, datetime
from decimal import Decimal
from tether.foundation.cost.backends.sqlite import SqliteCostStore
from tether.foundation.cost.contract import CostRecord
from tether.foundation.limits.backends.sqlite import SqliteLimitsStore
from tether.foundation.policy.backends.sqlite import SqliteAuditLog
from tether.foundation.policy.contract import AuditRecord
from tether.foundation.tools.backends.sqlite import SqliteToolResults
from tether.foundation.tools.results import CallStatus, ToolCallRecord

path = sys.argv[1]
SqliteLimitsStore(path).admit("run-1", "s1", "fp", counted=True, call_cap=5, loop_after=3)
SqliteAuditLog(path).record(AuditRecord(
    at=datetime.now(UTC), run_id="run-1", workflow="w@1", step_id="s1", kind="model",
    target="chat", guard="budget", rule="model_call_cap", outcome="allow", reason="1 of 5"))
SqliteCostStore("sqlite:///" + path).record(CostRecord(
    run_id="run-1", workflow="w@1", step_id="s1", backend="scripted", provider=None,
    model="s-1", input_tokens=3, output_tokens=1, usd=Decimal("0.25"), priced=True))
tools = SqliteToolResults("sqlite:///" + path)
row, _ = tools.begin(ToolCallRecord(
    run_id="run-1", step_id="s2", attempt=0, tool="add", args={}, args_hash="h",
    idempotency_key=None, status=CallStatus.STARTED, started_at=time.time()), trailing=True)
tools.finish("run-1", "s2", row.attempt, result="2", result_ref=None, finished_at=time.time())
os.kill(os.getpid(), signal.SIGKILL)  # no close, no checkpoint: the WAL as a crash leaves it
"""


def test_a_sigkill_after_trailing_writes_loses_none_of_them(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    from tether.foundation.cost.backends.sqlite import SqliteCostStore
    from tether.foundation.limits.backends.sqlite import SqliteLimitsStore
    from tether.foundation.policy.backends.sqlite import SqliteAuditLog
    from tether.foundation.tools.backends.sqlite import SqliteToolResults
    from tether.foundation.tools.results import CallStatus

    path = tmp_path / "tether.db"
    died = subprocess.run([sys.executable, "-c", _TRAIL_AND_DIE, str(path)], check=False)
    assert died.returncode == -signal.SIGKILL
    assert SqliteLimitsStore(path).budget("run-1").calls == 1
    assert [r.reason for r in SqliteAuditLog(path).query(run_id="run-1")] == ["1 of 5"]
    assert [str(c.usd) for c in SqliteCostStore(f"sqlite:///{path}").calls("run-1")] == [
        "0.250000000000"
    ]
    call = SqliteToolResults(f"sqlite:///{path}").lookup("run-1", "s2")
    assert call is not None and (call.status, call.result) == (CallStatus.FINISHED, "2")


@pytest.mark.parametrize(
    ("trailing", "approval", "kind"),
    [
        (True, None, "trailing"),  # pure / idempotent_with_key: a replay may re-run or re-send
        (False, None, "flushed"),  # unsafe_on_replay: on disk before dispatch
        (True, "req-1", "flushed"),  # spends an approval: never left to trail
    ],
)
def test_a_tool_intent_is_flushed_when_its_replay_needs_it_on_disk(
    tmp_path: Path, traced: Trace, trailing: bool, approval: str | None, kind: str
) -> None:
    import time

    from tether.foundation.tools.backends.sqlite import SqliteToolResults
    from tether.foundation.tools.results import CallStatus, ToolCallRecord

    store = SqliteToolResults(f"sqlite:///{tmp_path / 'tools.db'}")
    intent = ToolCallRecord(
        run_id="run-1", step_id="s1", attempt=0, tool="send", args={}, args_hash="h",
        idempotency_key=None, status=CallStatus.STARTED, started_at=time.time(),
        approval=approval,
    )  # fmt: skip
    traced.on = True
    store.begin(intent, trailing=trailing)
    store.finish("run-1", "s1", 0, result="1", result_ref=None, finished_at=time.time())
    traced.on = False
    store.close()
    assert traced.commits == Counter({(kind, "tool_call_results"): 1}) + Counter(
        {("trailing", "tool_call_results"): 1}  # the result: the journal append is the record
    )
