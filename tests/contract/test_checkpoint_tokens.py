"""I2 contract, a model call's streamed tokens: written to the run's stream under its lease
with no journal entry, and a restarted attempt's first write puts a marker naming where the
cut-short attempt's tokens began. The same on memory, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tether.foundation.checkpoint.contract import (
    Accept,
    Checkpointer,
    LeaseLost,
    NewRun,
    restart_marker,
)

ACCEPTS = [Accept(workflow="wf", version="1.*")]


def claimed(cp: Checkpointer, lease: float = 30.0) -> tuple[str, str]:
    run, _ = cp.create_run(NewRun(id=uuid.uuid4().hex, workflow="wf", version="1.0.0", input="{}"))
    [claim] = cp.claim("w", ACCEPTS, 1, lease, run_id=run.id)
    return run.id, claim.token


def values(cp: Checkpointer, run_id: str) -> list[object]:
    return [json.loads(i.value) for i in cp.read_stream(run_id, "answer").items]


def test_tokens_are_stream_values_with_no_journal_entry(checkpointer: Checkpointer) -> None:
    run_id, token = claimed(checkpointer)
    checkpointer.append_tokens(run_id, token, "answer", "1", ['"Hel"'], first=True)
    checkpointer.append_tokens(run_id, token, "answer", "1", ['"lo"', '"!"'], first=False)
    assert values(checkpointer, run_id) == ["Hel", "lo", "!"]
    assert checkpointer.journal(run_id) == []


def test_a_restarted_attempt_is_marked_once_before_its_tokens(checkpointer: Checkpointer) -> None:
    run_id, token = claimed(checkpointer)
    checkpointer.append_tokens(run_id, token, "answer", "0", ['"other"'], first=True)
    checkpointer.append_tokens(run_id, token, "answer", "1", ['"Hel"', '"l"'], first=True)
    checkpointer.append_tokens(run_id, token, "answer", "1", ['"Hello"'], first=True)
    checkpointer.append_tokens(run_id, token, "answer", "1", ['"!"'], first=False)
    assert values(checkpointer, run_id) == [
        "other",
        "Hel",
        "l",
        json.loads(restart_marker(1)),
        "Hello",
        "!",
    ]
    checkpointer.append_tokens(run_id, token, "answer", "2", ['"next"'], first=True)
    assert values(checkpointer, run_id)[-1] == "next"  # another step: nothing to mark


def test_a_third_attempt_marks_where_the_second_began(checkpointer: Checkpointer) -> None:
    run_id, token = claimed(checkpointer)
    for attempt in ("a", "b", "c"):
        checkpointer.append_tokens(run_id, token, "answer", "1", [json.dumps(attempt)], True)
    assert values(checkpointer, run_id) == [
        "a",
        {"$restart": 0},
        "b",
        {"$restart": 2},
        "c",
    ]


def test_tokens_without_the_lease_are_refused(checkpointer: Checkpointer) -> None:
    run_id, token = claimed(checkpointer, lease=0.05)
    time.sleep(0.1)
    checkpointer.claim("w2", ACCEPTS, 1, 30.0, run_id=run_id)
    with pytest.raises(LeaseLost):
        checkpointer.append_tokens(run_id, token, "answer", "1", ['"late"'], first=True)
    assert values(checkpointer, run_id) == []
