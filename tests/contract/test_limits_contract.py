"""I10 contract: every limits backend counts a run's calls once per step, however often a
crashed worker asks again, and shares buckets and breakers between the workers using it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.contract.backends import handles, installed
from tether.foundation.limits.contract import Admission, LimitsStore

Open = Callable[[], LimitsStore]  # another handle on the same counters, as a second worker


@pytest.fixture(params=installed("limits"))
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Open]:
    with handles("limits", request.param, LimitsStore, "limits", tmp_path) as open_again:
        yield open_again


def admit(
    store: LimitsStore, step: str, fp: str = "", counted: bool = True, cap: int = 50
) -> Admission:
    return store.admit("run-1", step, fp or step, counted=counted, call_cap=cap, loop_after=3)


def test_the_call_after_the_cap_is_refused_and_counts_nothing(open_store: Open) -> None:
    store = open_store()
    assert [admit(store, f"s{i}", cap=2).refused for i in range(3)] == [None, None, "call_cap"]
    assert store.budget("run-1").calls == 2
    assert admit(store, "s3", cap=2).refused == "call_cap"


def test_a_step_asked_again_after_a_crash_gets_its_first_answer_and_counts_once(
    open_store: Open,
) -> None:
    store = open_store()
    first = admit(store, "s0")
    again = open_store().admit("run-1", "s0", "s0", counted=True, call_cap=50, loop_after=3)
    assert (again.refused, again.calls, again.replayed) == (None, 1, True)
    assert not first.replayed
    assert store.budget("run-1").calls == 1


def test_a_refused_step_is_refused_again_when_asked_again(open_store: Open) -> None:
    store = open_store()
    admit(store, "s0", cap=1)
    assert admit(store, "s1", cap=1).refused == "call_cap"
    assert admit(store, "s1", cap=5).refused == "call_cap"  # the journaled answer, not a new one


def test_tool_calls_do_not_count_toward_the_model_call_cap(open_store: Open) -> None:
    store = open_store()
    for i in range(3):
        assert admit(store, f"t{i}", counted=False, cap=1).refused is None
    assert store.budget("run-1").calls == 0


def test_the_third_identical_call_in_a_row_is_refused_as_a_loop(open_store: Open) -> None:
    store = open_store()
    streaks = [admit(store, f"s{i}", fp="same") for i in range(3)]
    assert [(a.refused, a.streak) for a in streaks] == [(None, 1), (None, 2), ("loop", 3)]


def test_a_different_call_in_between_resets_the_streak(open_store: Open) -> None:
    store = open_store()
    fps = ["a", "a", "b", "a", "a"]
    assert [admit(store, f"s{i}", fp=fp).refused for i, fp in enumerate(fps)] == [None] * 5


def test_runs_are_counted_apart(open_store: Open) -> None:
    store = open_store()
    admit(store, "s0")
    store.admit("run-2", "s0", "x", counted=True, call_cap=1, loop_after=3)
    assert (store.budget("run-1").calls, store.budget("run-2").calls) == (1, 1)


def test_cost_is_set_per_step_so_a_reexecuted_call_is_not_charged_twice(open_store: Open) -> None:
    store = open_store()
    assert store.add_cost("run-1", "s0", 0.25) == (0.0, 0.25)
    assert store.add_cost("run-1", "s1", 0.5) == (0.25, 0.75)
    assert open_store().add_cost("run-1", "s0", 0.25) == (0.75, 0.75)
    assert store.budget("run-1").spent_usd == pytest.approx(0.75)


def test_raising_the_budget_adds_to_what_the_run_was_given(open_store: Open) -> None:
    store = open_store()
    store.add_cost("run-1", "s0", 1.0)
    store.raise_budget("run-1", 2.0)
    budget = open_store().raise_budget("run-1", 0.5)
    assert (budget.spent_usd, budget.raised_usd) == (1.0, 2.5)


def test_a_bucket_gives_its_capacity_then_refills_with_time(open_store: Open) -> None:
    store = open_store()

    def take(now: float) -> float:
        return store.take("b", capacity=3, per_second=1, amount=1, now=now)

    assert [take(100.0) for _ in range(4)] == [0.0, 0.0, 0.0, pytest.approx(1.0)]
    assert take(101.0) == 0.0
    assert take(101.0) == pytest.approx(1.0)


def test_tokens_debited_after_a_call_put_the_bucket_in_debt(open_store: Open) -> None:
    store = open_store()
    kw = {"capacity": 100.0, "per_second": 10.0, "now": 50.0}
    assert store.take("tokens", amount=0, **kw) == 0.0
    assert store.take("tokens", amount=300, force=True, **kw) == 0.0
    # 200 in debt: one token is 201 tokens away, at 10 a second.
    assert store.take("tokens", amount=0, **kw) == pytest.approx(20.1)


def test_workers_sharing_a_store_together_respect_one_rate_limit(open_store: Open) -> None:
    workers = [open_store(), open_store()]
    taken: list[float] = []

    def work(store: LimitsStore) -> None:
        for _ in range(15):
            taken.append(store.take("shared", capacity=10, per_second=0.001, amount=1, now=7.0))

    threads = [threading.Thread(target=work, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(1 for wait in taken if wait == 0.0) == 10


def test_the_breaker_opens_after_n_failures_and_fails_fast(open_store: Open) -> None:
    store = open_store()
    phases = [store.breaker_record("api", ok=False, now=10.0, threshold=3).phase for _ in range(3)]
    assert phases == ["closed", "closed", "open"]
    refused = open_store().breaker_allow("api", now=15.0, cooldown=30.0)
    assert (refused.allowed, refused.retry_after) == (False, pytest.approx(25.0))


def test_after_the_cooldown_one_probe_goes_and_its_success_closes_the_breaker(
    open_store: Open,
) -> None:
    store = open_store()
    store.breaker_record("api", ok=False, now=10.0, threshold=1)
    probe = store.breaker_allow("api", now=40.0, cooldown=30.0)
    assert (probe.allowed, probe.phase) == (True, "half_open")
    assert not store.breaker_allow("api", now=41.0, cooldown=30.0).allowed  # one probe at a time
    assert store.breaker_record("api", ok=True, now=42.0, threshold=1).phase == "closed"
    assert store.breaker_allow("api", now=42.0, cooldown=30.0).allowed


def test_a_failed_probe_opens_the_breaker_again(open_store: Open) -> None:
    store = open_store()
    store.breaker_record("api", ok=False, now=10.0, threshold=5)  # closed: 1 of 5
    for _ in range(4):
        store.breaker_record("api", ok=False, now=10.0, threshold=5)
    store.breaker_allow("api", now=40.0, cooldown=30.0)
    assert store.breaker_record("api", ok=False, now=41.0, threshold=5).phase == "open"
    assert not store.breaker_allow("api", now=60.0, cooldown=30.0).allowed


def test_a_success_resets_the_count_of_consecutive_failures(open_store: Open) -> None:
    store = open_store()
    store.breaker_record("api", ok=False, now=1.0, threshold=2)
    store.breaker_record("api", ok=True, now=2.0, threshold=2)
    assert store.breaker_record("api", ok=False, now=3.0, threshold=2).phase == "closed"
