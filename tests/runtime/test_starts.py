"""Debounced and throttled starts through `Tether.start`: a burst is one pending run that
runs once, after the burst, on its last input; a throttle makes a start wait for its turn."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tether import Debounce, Tether, Throttle
from tether.errors import ConfigurationError
from tether.foundation.checkpoint.contract import RunStatus


@pytest.fixture(params=["sqlite", "postgres"])
def t(request: pytest.FixtureRequest, make_tether: Callable[..., Tether]) -> Iterator[Tether]:
    if request.param == "sqlite":
        yield make_tether("sqlite")
        return
    from tests.postgres.server import fresh_schema

    with fresh_schema("st") as (url, schema):
        yield make_tether("postgres", checkpoint_database_url=url, checkpoint_schema=schema)


def finish(t: Tether, run_id: str) -> None:
    """Drive the run here until it ends: `run` waits through its start time."""
    assert t.run(run_id).status is RunStatus.COMPLETED


def test_a_debounced_burst_runs_once_on_its_last_input(t: Tether) -> None:
    burst = [
        t.start("steps", {"n": n}, debounce=Debounce(key="inbox", period=0.3)) for n in (1, 2, 3)
    ]
    assert len(set(burst)) == 1
    run = t.status(burst[0])
    assert run.status is RunStatus.PENDING and run.start_at is not None
    other = t.start("steps", {"n": 1}, debounce=Debounce(key="other", period=0.3))
    assert other != burst[0]  # another key is another burst
    finish(t, burst[0])
    assert t.output(t.status(burst[0])) == {"total": 0 + 1 + 2}
    assert len(t.list(workflow="steps")) == 2


def test_a_throttled_start_waits_for_its_turn(t: Tether) -> None:
    rule = Throttle(starts=1, per=0.3)
    first, second = (t.status(t.start("steps", {"n": 1}, throttle=rule)) for _ in range(2))
    assert first.start_at is not None and second.start_at is not None
    assert second.start_at >= first.start_at + 0.3
    finish(t, second.id)
    assert t.status(second.id).status is RunStatus.COMPLETED


def test_a_debounce_period_of_zero_is_refused_before_a_run_is_written(
    make_tether: Callable[..., Tether],
) -> None:
    t = make_tether("sqlite")
    with pytest.raises(ConfigurationError, match="period must be a number of seconds above 0"):
        t.start("steps", {"n": 1}, debounce=Debounce(key="inbox", period=0))
    assert t.list() == []
