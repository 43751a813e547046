"""I2 contract, debounced and throttled starts: a burst of starts with one debounce key is one
pending run, pushed back and given the latest input by each start; a throttle spaces starts to
its rate; neither is claimed before its start time. The same on memory, SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from tether.errors import ConfigurationError
from tether.foundation.checkpoint.contract import (
    Accept,
    Checkpointer,
    NewRun,
    RunFilter,
    RunRecord,
    RunStatus,
)
from tether.foundation.checkpoint.starts import Debounce, Throttle

ACCEPTS = [Accept(workflow="wf", version="1.*")]


def start(
    cp: Checkpointer,
    input: str = "{}",
    key: str | None = None,
    debounce: Debounce | None = None,
    throttle: Throttle | None = None,
) -> tuple[RunRecord, bool]:
    new = NewRun(id=uuid.uuid4().hex, workflow="wf", version="1.0.0", input=input, key=key)
    return cp.create_run(new.model_copy(update={"debounce": debounce, "throttle": throttle}))


def claimable(cp: Checkpointer) -> list[str]:
    return [c.run.id for c in cp.claim("w", ACCEPTS, 10, 30.0)]


def test_a_burst_of_debounced_starts_is_one_run_with_the_last_input(
    checkpointer: Checkpointer,
) -> None:
    rule = Debounce(key="wf:ticket-7", period=0.3)
    first, created = start(checkpointer, '{"n": 1}', debounce=rule)
    assert created and first.status is RunStatus.PENDING
    assert first.start_at is not None and first.start_at >= first.created_at + 0.3
    time.sleep(0.1)
    again, created = start(checkpointer, '{"n": 2}', debounce=rule)
    assert (again.id, created, again.input) == (first.id, False, '{"n": 2}')
    assert again.start_at is not None and again.start_at > first.start_at  # pushed back
    assert claimable(checkpointer) == []  # not before its start time
    time.sleep(0.45)
    assert claimable(checkpointer) == [first.id]
    after, created = start(checkpointer, '{"n": 3}', debounce=rule)
    assert created and after.id != first.id  # the burst's run started: a new burst


def test_concurrent_debounced_starts_make_one_run(checkpointer: Checkpointer) -> None:
    rule = Debounce(key="wf:k", period=5)
    ids: list[str] = []

    def starter(i: int) -> None:
        ids.append(start(checkpointer, f'{{"n": {i}}}', debounce=rule)[0].id)

    threads = [threading.Thread(target=starter, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 1
    assert len(checkpointer.list_runs(RunFilter())) == 1


def test_an_idempotency_key_still_returns_its_run(checkpointer: Checkpointer) -> None:
    rule = Debounce(key="wf:k", period=5)
    run, _ = start(checkpointer, key="once", debounce=rule)
    again, created = start(checkpointer, '{"other": 1}', key="once", debounce=rule)
    assert (again.id, created, again.input) == (run.id, False, "{}")


def test_a_throttle_spaces_starts_to_its_rate(checkpointer: Checkpointer) -> None:
    rule = Throttle(starts=2, per=0.4, key="wf:")
    runs = [start(checkpointer, throttle=rule)[0] for _ in range(3)]
    now = time.time()
    assert all(r.start_at is not None and r.start_at <= now for r in runs[:2])
    first, third = runs[0].start_at, runs[2].start_at
    assert first is not None and third is not None and third >= first + 0.4
    assert sorted(claimable(checkpointer)) == sorted(r.id for r in runs[:2])
    time.sleep(third - time.time() + 0.05)
    assert claimable(checkpointer) == [runs[2].id]


@pytest.mark.parametrize("period", [0, -1, float("nan")])
def test_a_debounce_period_of_zero_or_less_is_refused(period: float) -> None:
    with pytest.raises(ConfigurationError, match="period must be a number of seconds above 0"):
        Debounce(key="k", period=period)


def test_a_throttle_below_one_start_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="starts must be a whole number of at least 1"):
        Throttle(starts=0, per=1)
