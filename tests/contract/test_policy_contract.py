"""I9 contract: every audit backend keeps each guard decision (who, what, rule, outcome) in
its own table, durably, and answers per run and per outcome."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.contract.backends import handles, installed
from tether.foundation.policy.config import open_audit_log
from tether.foundation.policy.contract import AuditLog, AuditRecord
from tether.settings import Settings

Open = Callable[[], AuditLog]  # a new handle on the same log, as after a restart


@pytest.fixture(params=installed("audit"))
def open_log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Open]:
    with handles("audit", request.param, AuditLog, "policy", tmp_path) as open_again:
        yield open_again


def row(run_id: str = "run-1", outcome: str = "allow", **kw: object) -> AuditRecord:
    fields: dict[str, object] = {
        "at": datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC), "run_id": run_id,
        "workflow": "triage@1.0.0", "step_id": "0.1", "kind": "tool", "target": "send_email",
        "who": "alice", "guard": "policy", "rule": "default", "outcome": outcome,
        "reason": "no rule matched; the default is allow", **kw,
    }  # fmt: skip
    return AuditRecord.model_validate(fields)


def test_a_recorded_decision_reads_back_whole(open_log: Open) -> None:
    log = open_log()
    entry = row(backend="anthropic", arguments='{"to": "bob"}')
    log.record(entry)
    assert log.query() == [entry]


def test_decisions_survive_reopening_the_log(open_log: Open) -> None:
    open_log().record(row(rule="first"))
    open_log().record(row(rule="second"))
    assert [r.rule for r in open_log().query()] == ["first", "second"]


def test_query_filters_by_run_and_outcome_in_order(open_log: Open) -> None:
    log = open_log()
    for run_id, outcome in [("a", "allow"), ("b", "deny"), ("a", "deny"), ("a", "allow")]:
        log.record(row(run_id=run_id, outcome=outcome, reason=f"{run_id}-{outcome}"))
    assert [r.reason for r in log.query(run_id="a")] == ["a-allow", "a-deny", "a-allow"]
    assert [r.reason for r in log.query(outcome="deny")] == ["b-deny", "a-deny"]
    assert len(log.query(limit=2)) == 2


def test_an_anonymous_call_is_recorded_without_a_subject(open_log: Open) -> None:
    log = open_log()
    log.record(row(who=None))
    assert log.query()[0].who is None


def test_the_audit_backend_follows_the_policy_database_url(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'x.db'}")
    log = open_audit_log(settings)
    log.record(row())
    log.close()
    assert (tmp_path / "x.db").exists()
