"""I2 contract: every checkpointer keeps runs, journals, leases, waits and events alike.

One suite over memory, SQLite and PostgreSQL (a fresh schema per test on 127.0.0.1:5432; the
PostgreSQL cases skip, saying why, only when that server is unreachable). Where the backends
disagree, one of them is wrong.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.contract.backends import environment, installed
from tests.postgres.server import fresh_schema
from tether.errors import DatabaseUnavailable, RunNotFound, RunStateError, SchemaVersionError
from tether.foundation.checkpoint.backends.sqlite import SqliteCheckpointer
from tether.foundation.checkpoint.contract import (
    Accept,
    Append,
    Checkpointer,
    Claim,
    EntryKind,
    EntryStatus,
    Hosted,
    JournalEntry,
    LeaseLost,
    NewRun,
    Resumer,
    RunFilter,
    RunStatus,
    Schedule,
    ThreadBlob,
    ThreadCheckpoint,
    ThreadCheckpoints,
    ThreadQuery,
    ThreadWrite,
    Wait,
    WaitKind,
)
from tether.foundation.checkpoint.events import BUDGET_EVENT
from tether.foundation.loader import open_backend

ACCEPTS = [Accept(workflow="wf", version="1.*")]
LEASE = 30.0


def start(cp: Checkpointer, key: str | None = None, **fields: object) -> str:
    run_id = uuid.uuid4().hex
    run, created = cp.create_run(
        NewRun(id=run_id, workflow="wf", version="1.0.0", input="{}", key=key, **fields)  # type: ignore[arg-type]
    )
    assert created
    return run.id


def claim(cp: Checkpointer, run_id: str, lease: float = LEASE, owner: str = "w1") -> Claim:
    claims = cp.claim(owner, ACCEPTS, 1, lease, run_id=run_id)
    assert len(claims) == 1, f"run {run_id} was not claimable"
    return claims[0]


def step(run_id: str, step_id: str, value: object = None, **fields: object) -> JournalEntry:
    now = time.time()
    return JournalEntry(
        run_id=run_id, step_id=step_id, kind=EntryKind.STEP, name=f"s{step_id}",
        value=json.dumps(value), started_at=now, finished_at=now, **fields,  # type: ignore[arg-type]
    )  # fmt: skip


def event_wait(step_id: str, event: str = "go", **match: object) -> Wait:
    return Wait(step_id=step_id, name="wait", kind=WaitKind.EVENT, event=event, match=match)


def timer(step_id: str, seconds: float) -> Wait:
    return Wait(step_id=step_id, name="nap", kind=WaitKind.TIMER, deadline=time.time() + seconds)


def parked_on_event(cp: Checkpointer, step_id: str = "1", **match: object) -> str:
    run_id = start(cp)
    assert cp.park(run_id, claim(cp, run_id).token, [event_wait(step_id, **match)]) == []
    return run_id


# -- runs ---------------------------------------------------------------------------------


def test_a_key_starts_one_run_however_often_it_is_used(checkpointer: Checkpointer) -> None:
    first = start(checkpointer, key="order-7")
    again, created = checkpointer.create_run(
        NewRun(id="other", workflow="wf", version="1.0.0", input="{}", key="order-7")
    )
    assert (again.id, created) == (first, False)
    assert start(checkpointer, key="order-8") != first
    assert checkpointer.get_run(first).status is RunStatus.PENDING


def test_an_unknown_run_is_not_found(checkpointer: Checkpointer) -> None:
    with pytest.raises(RunNotFound):
        checkpointer.get_run("nope")


def test_list_filters_by_status_workflow_parent_and_finish_time(checkpointer: Checkpointer) -> None:
    parent = start(checkpointer)
    child = start(checkpointer, parent_id=parent, parent_step="1")
    done = start(checkpointer)
    checkpointer.complete(done, claim(checkpointer, done).token, "1")
    checkpointer.create_run(NewRun(id="x", workflow="other", version="1.0.0", input="{}"))

    def ids(**f: object) -> list[str]:
        return [r.id for r in checkpointer.list_runs(RunFilter(**f))]  # type: ignore[arg-type]

    assert ids() == ["x", done, child, parent]  # newest first
    assert ids(statuses=[RunStatus.COMPLETED]) == [done]
    assert ids(workflow="other") == ["x"]
    assert ids(parent_id=parent) == [child]
    assert ids(finished_before=time.time() + 60) == [done]
    assert ids(finished_before=0.0) == []
    assert ids(limit=2) == ["x", done]


def test_a_page_after_a_cursor_continues_where_the_last_one_ended(
    checkpointer: Checkpointer,
) -> None:
    ids = [start(checkpointer) for _ in range(5)]
    checkpointer.create_run(NewRun(id="v2", workflow="wf", version="2.0.0", input="{}"))
    first = checkpointer.list_runs(RunFilter(limit=3))
    cursor = (first[-1].created_at, first[-1].id)
    second = checkpointer.list_runs(RunFilter(limit=3, before=cursor))
    assert [r.id for r in first + second] == ["v2", *reversed(ids)]
    assert [r.id for r in checkpointer.list_runs(RunFilter(version="2.0.0"))] == ["v2"]
    middle = checkpointer.get_run(ids[2]).created_at
    after = checkpointer.list_runs(RunFilter(version="1.0.0", created_after=middle))
    before = checkpointer.list_runs(RunFilter(created_before=middle))
    assert [r.id for r in after] == [ids[4], ids[3], ids[2]]
    assert [r.id for r in before] == [ids[1], ids[0]]
    for done in (ids[1], ids[3]):
        checkpointer.cancel(done)
    two = [RunStatus.PENDING, RunStatus.CANCELLED]  # merged newest first, a page at a time
    head = checkpointer.list_runs(RunFilter(statuses=two, limit=3))
    tail = checkpointer.list_runs(
        RunFilter(statuses=two, limit=3, before=(head[-1].created_at, head[-1].id))
    )
    assert [r.id for r in head + tail] == ["v2", *reversed(ids)]


def test_a_run_only_a_dead_worker_hosted_is_stranded_until_a_live_one_resumes_it(
    checkpointer: Checkpointer,
) -> None:
    """DESIGN: stranded = unfinished and no *live* worker can run it, read from what workers
    record with their heartbeats."""
    old = start(checkpointer)  # wf@1.0.0
    done = start(checkpointer)
    checkpointer.complete(done, claim(checkpointer, done).token, "1")

    def stranded() -> list[str]:
        return [r.id for r in checkpointer.list_runs(RunFilter(stranded=True))]

    assert stranded() == [old]  # no worker has ever heartbeat
    assert checkpointer.resumers([old]) == {old: []}
    checkpointer.record_worker("dead", [Hosted(workflow="wf", version="1.0.0")], 1.0)
    assert stranded() == []
    assert checkpointer.resumers([old]) == {old: [Resumer(version="1.0.0", live=True)]}
    time.sleep(1.1)  # its heartbeat expired
    assert stranded() == [old]
    assert checkpointer.resumers([old]) == {old: [Resumer(version="1.0.0", live=False)]}
    checkpointer.record_worker("other", [Hosted(workflow="wf", version="2.0.0")], 30)
    assert stranded() == [old]  # 2.0.0 does not declare that it resumes 1.0.0
    hosts = [Hosted(workflow="wf", version="1.1.0", resumes=("1.0.*",))]
    checkpointer.record_worker("live", hosts, 30)
    assert stranded() == []
    assert checkpointer.resumers([old, done]) == {
        old: [Resumer(version="1.1.0", live=True), Resumer(version="1.0.0", live=False)],
        done: [Resumer(version="1.1.0", live=True), Resumer(version="1.0.0", live=False)],
    }


def test_the_journal_comes_back_in_write_order(checkpointer: Checkpointer) -> None:
    run_id = start(checkpointer)
    token = claim(checkpointer, run_id).token
    checkpointer.append(run_id, token, [step(run_id, "2", "a")])
    checkpointer.append(run_id, token, [step(run_id, "10", "b"), step(run_id, "3", "c")])
    assert [e.value for e in checkpointer.journal(run_id)] == ['"a"', '"b"', '"c"']
    replayed = claim_after_release(checkpointer, run_id, token).journal  # in any order
    assert sorted(e.value or "" for e in replayed) == ['"a"', '"b"', '"c"']


def test_one_steps_rows_are_read_without_the_rest_of_the_journal(
    checkpointer: Checkpointer,
) -> None:
    run_id = start(checkpointer)
    token = claim(checkpointer, run_id).token
    failed = step(run_id, "2", None, status=EntryStatus.ATTEMPT, attempt=1)
    checkpointer.append(run_id, token, [step(run_id, "1", "a"), failed])
    timer_end = replace(step(run_id, "2~1"), kind=EntryKind.SLEEP)
    checkpointer.append(run_id, token, [timer_end])
    checkpointer.append(run_id, token, [step(run_id, "2", "b", attempt=2), step(run_id, "20")])
    rows = checkpointer.journal_at(run_id, "2")  # its attempts, its backoff's timer, its entry
    assert [(e.step_id, e.status, e.attempt) for e in rows] == [
        ("2", EntryStatus.ATTEMPT, 1),
        ("2~1", EntryStatus.OK, 1),
        ("2", EntryStatus.OK, 2),
    ]
    assert checkpointer.journal_at(run_id, "4") == []


def claim_after_release(cp: Checkpointer, run_id: str, token: str) -> Claim:
    cp.release(run_id, token)
    assert cp.get_run(run_id).status is RunStatus.PENDING
    return claim(cp, run_id)


def test_an_entry_is_journaled_once(checkpointer: Checkpointer) -> None:
    run_id = start(checkpointer)
    token = claim(checkpointer, run_id).token
    checkpointer.append(run_id, token, [step(run_id, "1", 1)])
    with pytest.raises(RunStateError):
        checkpointer.append(run_id, token, [step(run_id, "1", 2)])
    assert [e.value for e in checkpointer.journal(run_id)] == ["1"]


# -- claims and leases --------------------------------------------------------------------


def test_a_claim_takes_only_accepted_runnable_runs(checkpointer: Checkpointer) -> None:
    run_id = start(checkpointer)
    checkpointer.create_run(NewRun(id="v2", workflow="wf", version="2.0.0", input="{}"))
    checkpointer.create_run(NewRun(id="other", workflow="other", version="1.0.0", input="{}"))
    claims = checkpointer.claim("w1", ACCEPTS, 10, LEASE)
    assert [c.run.id for c in claims] == [run_id]
    run = checkpointer.get_run(run_id)
    assert (run.status, run.lease_owner, run.claims) == (RunStatus.RUNNING, "w1", 1)
    assert checkpointer.claim("w2", ACCEPTS, 10, LEASE) == []  # the lease is live
    assert checkpointer.claim("w2", [Accept(workflow="wf", version="2.0.0")], 10, LEASE)


def test_of_two_claimers_racing_for_each_run_exactly_one_wins(checkpointer: Checkpointer) -> None:
    runs = {start(checkpointer) for _ in range(20)}
    won: list[str] = []
    barrier = threading.Barrier(4)

    def claimer(owner: str) -> None:
        barrier.wait()
        while batch := checkpointer.claim(owner, ACCEPTS, 3, LEASE):
            won.extend(c.run.id for c in batch)

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(won) == sorted(runs)


def test_a_worker_whose_lease_expired_and_was_taken_over_cannot_write(
    checkpointer: Checkpointer,
) -> None:
    run_id = start(checkpointer)
    old = claim(checkpointer, run_id, lease=0.05, owner="w1").token
    time.sleep(0.2)
    new = claim(checkpointer, run_id, owner="w2").token
    assert new != old
    with pytest.raises(LeaseLost) as lost:
        checkpointer.append(run_id, old, [step(run_id, "1")])
    assert not lost.value.cancel_requested
    with pytest.raises(LeaseLost):
        checkpointer.append(run_id, old, [step(run_id, "1"), step(run_id, "2")])
    with pytest.raises(LeaseLost):
        checkpointer.complete(run_id, old, "1")
    with pytest.raises(LeaseLost):
        checkpointer.park(run_id, old, [timer("1", 60)])
    assert not checkpointer.heartbeat(run_id, old, LEASE)
    checkpointer.release(run_id, old)  # a stale release is ignored
    checkpointer.append(run_id, new, [step(run_id, "1")])
    checkpointer.complete(run_id, new, "1")
    run = checkpointer.get_run(run_id)
    assert (run.status, run.claims, [e.step_id for e in checkpointer.journal(run_id)]) == (
        RunStatus.COMPLETED, 2, ["1"]
    )  # fmt: skip


def test_a_shared_commit_writes_every_leased_append_and_fences_only_the_stale_one(
    checkpointer: Checkpointer,
) -> None:
    live, fenced, several = start(checkpointer), start(checkpointer), start(checkpointer)
    tokens = {r: claim(checkpointer, r).token for r in (live, several)}
    stale = claim(checkpointer, fenced, lease=0.05, owner="w1").token
    time.sleep(0.2)
    claim(checkpointer, fenced, owner="w2")  # taken over: w1's append must write nothing
    results = checkpointer.append_many(
        [
            Append(several, tokens[several], [step(several, "1"), step(several, "2")]),
            Append(fenced, stale, [step(fenced, "1")]),
            Append(live, tokens[live], [step(live, "1")]),
        ]
    )
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], LeaseLost) and results[1].run_id == fenced
    assert [e.step_id for e in checkpointer.journal(several)] == ["1", "2"]
    assert checkpointer.journal(fenced) == []
    assert [e.step_id for e in checkpointer.journal(live)] == ["1"]


def test_a_shared_commit_fences_a_run_a_cancel_is_pending_on_and_says_so(
    checkpointer: Checkpointer,
) -> None:
    live, cancelled = start(checkpointer), start(checkpointer)
    tokens = {r: claim(checkpointer, r).token for r in (live, cancelled)}
    checkpointer.cancel(cancelled)
    results = checkpointer.append_many(
        [Append(r, tokens[r], [step(r, "1"), step(r, "2")]) for r in (cancelled, live)]
    )
    assert isinstance(results[0], LeaseLost) and results[0].cancel_requested
    assert results[1] is None
    assert checkpointer.journal(cancelled) == []
    assert [e.step_id for e in checkpointer.journal(live)] == ["1", "2"]


def test_a_shared_commit_completes_a_run_and_refuses_a_completion_without_the_lease(
    checkpointer: Checkpointer,
) -> None:
    done, going, fenced = start(checkpointer), start(checkpointer), start(checkpointer)
    tokens = {r: claim(checkpointer, r).token for r in (done, going)}
    stale = claim(checkpointer, fenced, lease=0.05).token
    time.sleep(0.2)
    claim(checkpointer, fenced, owner="w2")
    results = checkpointer.append_many(
        [
            Append(done, tokens[done], [step(done, "1")], output='"out"'),
            Append(going, tokens[going], [step(going, "1")]),
            Append(fenced, stale, [step(fenced, "1")], output='"stale"'),
        ]
    )
    assert results[0] is None and results[1] is None and isinstance(results[2], LeaseLost)
    finished = checkpointer.get_run(done)
    assert (finished.status, finished.output, finished.lease_owner) == (
        RunStatus.COMPLETED, '"out"', None
    )  # fmt: skip
    assert [e.step_id for e in checkpointer.journal(done)] == ["1"]
    assert checkpointer.get_run(going).status is RunStatus.RUNNING
    assert checkpointer.get_run(fenced).status is RunStatus.RUNNING  # w2's now, untouched
    assert checkpointer.journal(fenced) == []


def test_a_failing_append_in_a_shared_commit_does_not_sink_the_others(
    checkpointer: Checkpointer,
) -> None:
    first, second, third = start(checkpointer), start(checkpointer), start(checkpointer)
    tokens = {r: claim(checkpointer, r).token for r in (first, second, third)}
    checkpointer.append(second, tokens[second], [step(second, "1", "kept")])
    results = checkpointer.append_many(
        [
            Append(first, tokens[first], [step(first, "1")]),
            Append(second, tokens[second], [step(second, "1", "again")]),  # written twice
            Append(third, tokens[third], [step(third, "1"), step(third, "2")]),
        ]
    )
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], RunStateError)
    assert [e.value for e in checkpointer.journal(second)] == ['"kept"']
    assert [e.step_id for e in checkpointer.journal(first)] == ["1"]
    assert [e.step_id for e in checkpointer.journal(third)] == ["1", "2"]


def test_a_shared_commit_met_again_after_its_answer_was_lost_counts_its_own_rows_as_written(
    checkpointer: Checkpointer,
) -> None:
    """A connection lost during COMMIT: the shared commit ran again and found its rows."""
    landed, other = start(checkpointer), start(checkpointer)
    tokens = {r: claim(checkpointer, r).token for r in (landed, other)}
    entry = step(landed, "1", "v")
    checkpointer.append(landed, tokens[landed], [entry])  # the first try, whose answer was lost
    results = checkpointer.append_many(
        [Append(landed, tokens[landed], [entry]), Append(other, tokens[other], [step(other, "1")])]
    )
    assert results == [None, None]
    assert [e.value for e in checkpointer.journal(landed)] == ['"v"']
    assert [e.step_id for e in checkpointer.journal(other)] == ["1"]


def test_a_heartbeat_keeps_the_lease_from_expiring(checkpointer: Checkpointer) -> None:
    run_id = start(checkpointer)
    token = claim(checkpointer, run_id, lease=0.1).token
    assert checkpointer.heartbeat(run_id, token, LEASE)
    time.sleep(0.2)
    assert checkpointer.claim("w2", ACCEPTS, 1, LEASE) == []
    assert not checkpointer.heartbeat(run_id, "not-the-token", LEASE)


def test_a_released_run_is_pending_for_the_next_claim(checkpointer: Checkpointer) -> None:
    run_id = start(checkpointer)
    first = claim(checkpointer, run_id)
    checkpointer.append(run_id, first.token, [step(run_id, "1")])
    second = claim_after_release(checkpointer, run_id, first.token)
    assert [e.step_id for e in second.journal] == ["1"]


def test_needs_attention_parks_the_run_until_resolved(checkpointer: Checkpointer) -> None:
    run_id = start(checkpointer)
    token = claim(checkpointer, run_id).token
    checkpointer.needs_attention(run_id, token, "1", '{"evidence": "sent?"}')
    run = checkpointer.get_run(run_id)
    assert (run.status, run.failed_step) == (RunStatus.NEEDS_ATTENTION, "1")
    assert checkpointer.claim("w1", ACCEPTS, 1, LEASE) == []
    with pytest.raises(LeaseLost):
        checkpointer.needs_attention(run_id, token, "1", "{}")
    decided = step(run_id, "1", "the person says: sent")
    assert checkpointer.resolve(run_id, "1", decided).status is RunStatus.PENDING
    assert [e.value for e in claim(checkpointer, run_id).journal] == [decided.value]
    with pytest.raises(RunStateError):
        checkpointer.resolve(run_id, "1", None)


def test_resolve_without_an_entry_lets_the_step_run_again(checkpointer: Checkpointer) -> None:
    run_id = start(checkpointer)
    checkpointer.needs_attention(run_id, claim(checkpointer, run_id).token, "1", "{}")
    assert checkpointer.resolve(run_id, "1", None).status is RunStatus.PENDING
    assert claim(checkpointer, run_id).journal == []
    with pytest.raises(RunNotFound):
        checkpointer.resolve("nope", "1", None)


# -- timers -------------------------------------------------------------------------------


def test_a_sleeping_run_wakes_when_its_timer_is_due(checkpointer: Checkpointer) -> None:
    run_id = start(checkpointer)
    nap = timer("1", 0.2)
    assert checkpointer.park(run_id, claim(checkpointer, run_id).token, [nap]) == []
    run = checkpointer.get_run(run_id)
    assert (run.status, run.wake_at, run.lease_owner) == (RunStatus.SLEEPING, nap.deadline, None)
    assert checkpointer.claim("w1", ACCEPTS, 1, LEASE) == []
    time.sleep(0.3)
    woken = claim(checkpointer, run_id)
    # Parking again on the same step keeps the first deadline: a timer does not drift.
    later = nap.model_copy(update={"deadline": time.time() + 60})
    [done] = checkpointer.park(run_id, woken.token, [later])
    assert (done.step_id, done.kind, done.value) == ("1", EntryKind.SLEEP, "null")
    checkpointer.append(run_id, woken.token, [step(run_id, "2")])  # the lease was kept


def test_a_wait_that_times_out_is_journaled_as_null(checkpointer: Checkpointer) -> None:
    run_id = start(checkpointer)
    wait = event_wait("1", id=1).model_copy(update={"deadline": time.time() - 1})
    [done] = checkpointer.park(run_id, claim(checkpointer, run_id).token, [wait])
    assert (done.kind, done.value, done.ref) == (EntryKind.EVENT, "null", None)


# -- events -------------------------------------------------------------------------------


def test_an_event_wakes_the_runs_whose_match_it_satisfies(checkpointer: Checkpointer) -> None:
    mine, other = parked_on_event(checkpointer, order=1), parked_on_event(checkpointer, order=2)
    assert checkpointer.get_run(mine).status is RunStatus.WAITING
    receipt = checkpointer.send_event("go", json.dumps({"order": 1, "ok": True}))
    assert receipt.woken == [mine]
    assert checkpointer.get_run(other).status is RunStatus.WAITING
    [entry] = claim(checkpointer, mine).journal
    assert (entry.kind, entry.ref, json.loads(entry.value or "")) == (
        EntryKind.EVENT, str(receipt.event_id), {"order": 1, "ok": True}
    )  # fmt: skip


def test_an_event_sent_before_the_wait_is_held_only_for_a_wait_with_a_match(
    checkpointer: Checkpointer,
) -> None:
    matched, unmatched = start(checkpointer), start(checkpointer)
    checkpointer.send_event("go", json.dumps({"order": 1}))
    [held] = checkpointer.park(
        matched, claim(checkpointer, matched).token, [event_wait("1", order=1)]
    )
    assert json.loads(held.value or "") == {"order": 1}
    assert (
        checkpointer.park(unmatched, claim(checkpointer, unmatched).token, [event_wait("1")]) == []
    )
    assert checkpointer.get_run(unmatched).status is RunStatus.WAITING


def test_an_event_sent_before_the_run_existed_is_not_held_for_it(
    checkpointer: Checkpointer,
) -> None:
    checkpointer.send_event("go", json.dumps({"order": 1}))
    run_id = start(checkpointer)
    assert (
        checkpointer.park(run_id, claim(checkpointer, run_id).token, [event_wait("1", order=1)])
        == []
    )


def test_an_event_addressed_to_a_run_is_held_for_it_even_without_a_match(
    checkpointer: Checkpointer,
) -> None:
    run_id, bystander = start(checkpointer), parked_on_event(checkpointer)
    receipt = checkpointer.send_event("go", json.dumps({"a": 1}), run_id=run_id)
    assert receipt.woken == []  # addressed: the bystander waiting on "go" is not woken
    assert checkpointer.get_run(bystander).status is RunStatus.WAITING
    [held] = checkpointer.park(run_id, claim(checkpointer, run_id).token, [event_wait("1")])
    assert held.ref == str(receipt.event_id)


def test_a_run_consumes_an_event_once(checkpointer: Checkpointer) -> None:
    run_id = start(checkpointer)
    checkpointer.send_event("go", json.dumps({"order": 1}))
    token = claim(checkpointer, run_id).token
    assert len(checkpointer.park(run_id, token, [event_wait("1", order=1)])) == 1
    # Step 1 is answered from its journal; step 2 does not get the same event again.
    both = checkpointer.park(run_id, token, [event_wait("1", order=1), event_wait("2", order=1)])
    assert [e.step_id for e in both] == ["1"]
    assert checkpointer.park(run_id, token, [event_wait("2", order=1)]) == []
    second = checkpointer.send_event("go", json.dumps({"order": 1}))
    assert second.woken == [run_id]
    assert [e.ref for e in checkpointer.journal(run_id)] == [
        str(second.event_id - 1), str(second.event_id)
    ]  # fmt: skip


def test_an_event_delivered_while_the_run_ran_answers_its_next_park(
    checkpointer: Checkpointer,
) -> None:
    run_id = start(checkpointer)
    token = claim(checkpointer, run_id).token
    # A gather: the timer is due now, so park keeps the lease and the event wait stays stored.
    [nap] = checkpointer.park(run_id, token, [timer("1", -1), event_wait("2")])
    assert nap.step_id == "1"
    assert checkpointer.send_event("go", "{}").woken == [run_id]
    assert checkpointer.get_run(run_id).status is RunStatus.RUNNING
    [delivered] = checkpointer.park(run_id, token, [event_wait("2")])
    assert (delivered.step_id, delivered.kind) == ("2", EntryKind.EVENT)


def test_a_run_waiting_only_for_a_budget_raise_is_paused_until_it_comes(
    checkpointer: Checkpointer,
) -> None:
    run_id = start(checkpointer)
    budget = event_wait("1", BUDGET_EVENT, run_id=run_id)
    assert checkpointer.park(run_id, claim(checkpointer, run_id).token, [budget]) == []
    assert checkpointer.get_run(run_id).status is RunStatus.PAUSED
    receipt = checkpointer.send_event(BUDGET_EVENT, json.dumps({"run_id": run_id}), run_id)
    assert receipt.woken == [run_id]
    assert checkpointer.get_run(run_id).status is RunStatus.PENDING


def test_an_event_for_an_unknown_or_finished_run_is_refused(checkpointer: Checkpointer) -> None:
    with pytest.raises(RunNotFound):
        checkpointer.send_event("go", "{}", run_id="nope")
    run_id = start(checkpointer)
    checkpointer.complete(run_id, claim(checkpointer, run_id).token, "1")
    with pytest.raises(RunStateError):
        checkpointer.send_event("go", "{}", run_id=run_id)


# -- children -----------------------------------------------------------------------------


def parent_and_child(cp: Checkpointer) -> tuple[str, str, str]:
    """A parent parked on its child at step "1"; returns (parent, its token, child)."""
    parent = start(cp)
    token = claim(cp, parent).token
    child = start(cp, parent_id=parent, parent_step="1", meta={"step_name": "kid"})
    wait = Wait(step_id="1", name="kid", kind=WaitKind.CHILD, child_id=child)
    assert cp.park(parent, token, [wait]) == []
    return parent, token, child


def test_a_finished_child_wakes_its_parent_with_its_output(checkpointer: Checkpointer) -> None:
    parent, _, child = parent_and_child(checkpointer)
    checkpointer.complete(child, claim(checkpointer, child).token, '{"x": 1}')
    assert checkpointer.get_run(parent).status is RunStatus.PENDING
    [entry] = claim(checkpointer, parent).journal
    assert (entry.kind, entry.name, entry.value, entry.ref) == (
        EntryKind.INVOKE, "kid", '{"x": 1}', child
    )  # fmt: skip


def test_a_child_completing_in_a_shared_commit_wakes_its_parent_as_alone(
    checkpointer: Checkpointer,
) -> None:
    parent, _, child = parent_and_child(checkpointer)
    other = start(checkpointer)
    tokens = {r: claim(checkpointer, r).token for r in (child, other)}
    results = checkpointer.append_many(
        [
            Append(child, tokens[child], [step(child, "1"), step(child, "2")], output="7"),
            Append(other, tokens[other], [step(other, "1"), step(other, "2")], output="8"),
        ]
    )
    assert results == [None, None]
    assert [checkpointer.get_run(r).output for r in (child, other)] == ["7", "8"]
    assert [e.step_id for e in checkpointer.journal(child)] == ["1", "2"]
    assert [e.step_id for e in checkpointer.journal(other)] == ["1", "2"]
    assert checkpointer.get_run(parent).status is RunStatus.PENDING
    [entry] = claim(checkpointer, parent).journal
    assert (entry.kind, entry.value, entry.ref) == (EntryKind.INVOKE, "7", child)


def test_a_failed_child_is_journaled_as_an_error_of_its_parent(
    checkpointer: Checkpointer,
) -> None:
    parent, _, child = parent_and_child(checkpointer)
    error = json.dumps({"type": "ValueError", "message": "bad"})
    checkpointer.fail(child, claim(checkpointer, child).token, error, "3")
    [entry] = claim(checkpointer, parent).journal
    assert entry.status is EntryStatus.ERROR
    assert json.loads(entry.error or "") == {"type": "ChildFailed", "message": "ValueError: bad"}


def test_a_child_that_finished_first_answers_the_parents_park(checkpointer: Checkpointer) -> None:
    parent = start(checkpointer)
    token = claim(checkpointer, parent).token
    child = start(checkpointer, parent_id=parent, parent_step="1")
    checkpointer.complete(child, claim(checkpointer, child).token, "7")
    wait = Wait(step_id="1", name="kid", kind=WaitKind.CHILD, child_id=child)
    [entry] = checkpointer.park(parent, token, [wait])
    assert entry.value == "7"


# -- cancel -------------------------------------------------------------------------------


def test_cancel_ends_a_parked_run_and_its_children_at_once(checkpointer: Checkpointer) -> None:
    parent, _, child = parent_and_child(checkpointer)
    assert checkpointer.cancel(parent).status is RunStatus.CANCELLED
    assert checkpointer.get_run(child).status is RunStatus.CANCELLED
    assert checkpointer.claim("w1", ACCEPTS, 10, LEASE) == []
    with pytest.raises(RunStateError):
        checkpointer.cancel(parent)
    with pytest.raises(RunNotFound):
        checkpointer.cancel("nope")


def test_cancel_of_a_running_run_stops_it_at_its_next_write(checkpointer: Checkpointer) -> None:
    parent, _, child = parent_and_child(checkpointer)
    child_token = claim(checkpointer, child).token
    running = checkpointer.cancel(child)
    assert (running.status, running.cancel_requested) == (RunStatus.RUNNING, True)
    with pytest.raises(LeaseLost) as lost:
        checkpointer.append(child, child_token, [step(child, "1")])
    assert lost.value.cancel_requested
    checkpointer.finish_cancel(child, child_token)
    assert checkpointer.get_run(child).status is RunStatus.CANCELLED
    [entry] = claim(checkpointer, parent).journal  # the parent hears its child was cancelled
    assert json.loads(entry.error or "")["message"] == "cancelled"


def test_a_cancelled_run_whose_worker_died_is_not_handed_out_again(
    checkpointer: Checkpointer,
) -> None:
    run_id = start(checkpointer)
    claim(checkpointer, run_id, lease=0.05)
    assert checkpointer.cancel(run_id).cancel_requested
    time.sleep(0.2)
    assert checkpointer.claim("w2", ACCEPTS, 10, LEASE) == []
    assert checkpointer.get_run(run_id).status is RunStatus.CANCELLED


def test_a_claim_beside_a_cancelled_run_whose_worker_died_cancels_it_and_hands_out_the_rest(
    checkpointer: Checkpointer,
) -> None:
    doomed = start(checkpointer)
    claim(checkpointer, doomed, lease=0.05)
    checkpointer.cancel(doomed)
    time.sleep(0.2)
    fresh = start(checkpointer)
    assert [c.run.id for c in checkpointer.claim("w2", ACCEPTS, 10, LEASE)] == [fresh]
    assert checkpointer.get_run(doomed).status is RunStatus.CANCELLED


# -- retry --------------------------------------------------------------------------------


def failed_at_step_2(cp: Checkpointer) -> str:
    run_id = start(cp)
    token = claim(cp, run_id).token
    boom = json.dumps({"type": "ValueError", "message": "boom"})
    cp.append(run_id, token, [step(run_id, "1", 1)])
    cp.fail(run_id, token, boom, "2", [step(run_id, "2", status=EntryStatus.ERROR, error=boom)])
    return run_id


def test_retry_resumes_a_failed_run_from_its_failed_step(checkpointer: Checkpointer) -> None:
    run_id = failed_at_step_2(checkpointer)
    assert checkpointer.get_run(run_id).failed_step == "2"
    run = checkpointer.retry(run_id)
    assert (run.status, run.error, run.failed_step) == (RunStatus.PENDING, None, None)
    journal = {e.step_id: e.status for e in claim(checkpointer, run_id).journal}
    assert journal == {"1": EntryStatus.OK, "2": EntryStatus.ATTEMPT}
    with pytest.raises(RunStateError):
        checkpointer.retry(run_id)
    with pytest.raises(RunNotFound):
        checkpointer.retry("nope")


def test_retry_of_a_parent_failed_by_its_child_retries_the_child(
    checkpointer: Checkpointer,
) -> None:
    parent, _, child = parent_and_child(checkpointer)
    boom = json.dumps({"type": "ValueError", "message": "boom"})
    checkpointer.fail(child, claim(checkpointer, child).token, boom, "1")
    token = claim(checkpointer, parent).token
    checkpointer.fail(parent, token, json.dumps({"type": "ChildFailed", "message": "x"}), "1")
    checkpointer.retry(parent)
    assert checkpointer.get_run(child).status is RunStatus.PENDING
    assert checkpointer.get_run(parent).status is RunStatus.PENDING


# -- races --------------------------------------------------------------------------------


def race(*fns: Callable[[], object]) -> None:
    """Run the callables at the same moment on their own threads; re-raise any failure."""
    barrier, errors = threading.Barrier(len(fns)), list[BaseException]()

    def go(fn: Callable[[], object]) -> None:
        barrier.wait()
        try:
            fn()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=go, args=(fn,)) for fn in fns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def park_racing_an_event(cp: Checkpointer, n: int) -> bool:
    """Park on an event while it is sent: True if the run heard it either way."""
    run_id = start(cp)
    token = claim(cp, run_id).token
    parked: list[list[JournalEntry]] = []
    race(
        lambda: parked.append(cp.park(run_id, token, [event_wait("1", n=n)])),
        lambda: cp.send_event("go", json.dumps({"n": n})),
    )
    return cp.get_run(run_id).status is RunStatus.PENDING or len(parked[0]) == 1


def test_an_event_sent_while_the_run_parks_is_never_lost(checkpointer: Checkpointer) -> None:
    assert all(park_racing_an_event(checkpointer, n) for n in range(25))


def park_racing_a_child(cp: Checkpointer) -> bool:
    """Park on a child while it completes: True if the parent heard it either way."""
    parent = start(cp)
    token = claim(cp, parent).token
    child = start(cp, parent_id=parent, parent_step="1")
    child_token = claim(cp, child).token
    wait = Wait(step_id="1", name="kid", kind=WaitKind.CHILD, child_id=child)
    parked: list[list[JournalEntry]] = []
    race(
        lambda: parked.append(cp.park(parent, token, [wait])),
        lambda: cp.complete(child, child_token, "1"),
    )
    return cp.get_run(parent).status is RunStatus.PENDING or len(parked[0]) == 1


def test_a_child_finishing_while_its_parent_parks_always_wakes_it(
    checkpointer: Checkpointer,
) -> None:
    assert all(park_racing_a_child(checkpointer) for _ in range(25))


def cancel_racing_a_child(cp: Checkpointer) -> tuple[RunStatus, RunStatus]:
    """Cancel a parent while its child completes; the statuses both end in."""
    parent, _, child = parent_and_child(cp)
    child_token = claim(cp, child).token

    def finish() -> None:
        try:
            cp.complete(child, child_token, "1")
        except LeaseLost as lost:  # the cancel got there first: the worker finishes it
            assert lost.cancel_requested
            cp.finish_cancel(child, child_token)

    race(lambda: cp.cancel(parent), finish)
    return cp.get_run(parent).status, cp.get_run(child).status


def test_cancelling_a_parent_while_its_child_finishes_settles_both(
    checkpointer: Checkpointer,
) -> None:
    for _ in range(25):
        parent, child = cancel_racing_a_child(checkpointer)
        assert parent is RunStatus.CANCELLED
        assert child in (RunStatus.COMPLETED, RunStatus.CANCELLED)


# -- housekeeping -------------------------------------------------------------------------


def test_prune_removes_runs_finished_before_the_cutoff_with_their_journals(
    checkpointer: Checkpointer,
) -> None:
    done, live = start(checkpointer, key="done"), start(checkpointer)
    token = claim(checkpointer, done).token
    checkpointer.append(done, token, [step(done, "1"), step(done, "2")])
    checkpointer.complete(done, token, "1")
    assert checkpointer.prune(finished_before=0.0).run_ids == []
    pruned = checkpointer.prune(finished_before=time.time() + 60)
    assert (pruned.run_ids, pruned.entries) == ([done], 2)
    with pytest.raises(RunNotFound):
        checkpointer.get_run(done)
    assert checkpointer.journal(done) == []
    assert checkpointer.get_run(live).status is RunStatus.PENDING
    assert start(checkpointer, key="done") != done  # the key is free again


def test_blob_refs_are_the_blobs_live_rows_still_point_at(checkpointer: Checkpointer) -> None:
    ref = '{"$blob": "%s"}'
    run_id = uuid.uuid4().hex
    checkpointer.create_run(NewRun(id=run_id, workflow="wf", version="1.0.0", input=ref % "in"))
    token = claim(checkpointer, run_id).token
    checkpointer.append(run_id, token, [replace(step(run_id, "1"), value=ref % "v")])
    checkpointer.complete(run_id, token, ref % "out")
    assert checkpointer.blob_refs() == {"in", "v", "out"}
    checkpointer.prune(finished_before=time.time() + 60)
    assert checkpointer.blob_refs() == set()


@pytest.mark.parametrize("backend", installed("checkpoint"))
def test_event_ids_keep_rising_after_old_events_are_pruned(backend: str, tmp_path: Path) -> None:
    """Consumed events are remembered by id and held ones found by id order: never reuse one."""
    with environment(backend, "checkpoint", tmp_path) as (settings, options):
        settings.event_retention_seconds = 0.0
        cp = open_backend("checkpoint", backend, Checkpointer, settings, **options)
        try:
            first = cp.send_event("go", "{}").event_id
            time.sleep(0.01)
            assert cp.prune(finished_before=0.0).events == 1
            assert cp.send_event("go", "{}").event_id > first
        finally:
            cp.close()


# -- schedules ----------------------------------------------------------------------------


def test_schedules_are_stored_replaced_by_name_and_deleted(checkpointer: Checkpointer) -> None:
    nightly = Schedule(name="nightly", cron="0 3 * * *", workflow="wf", next_at=100.5)
    checkpointer.put_schedule(nightly)
    checkpointer.put_schedule(Schedule(name="hourly", cron="0 * * * *", workflow="wf", next_at=1))
    checkpointer.put_schedule(nightly.model_copy(update={"cron": "0 4 * * *"}))
    assert [(s.name, s.cron) for s in checkpointer.schedules()] == [
        ("hourly", "0 * * * *"), ("nightly", "0 4 * * *")
    ]  # fmt: skip
    assert checkpointer.delete_schedule("hourly")
    assert not checkpointer.delete_schedule("hourly")
    assert [s.name for s in checkpointer.schedules()] == ["nightly"]


def test_of_two_workers_advancing_one_tick_exactly_one_wins(checkpointer: Checkpointer) -> None:
    tick = 1_700_000_000.123456
    checkpointer.put_schedule(Schedule(name="s", cron="* * * * *", workflow="wf", next_at=tick))
    wins: list[bool] = []
    race(*[lambda: wins.append(checkpointer.advance_schedule("s", tick, tick + 60))] * 4)
    assert sorted(wins) == [False, False, False, True]
    assert [s.next_at for s in checkpointer.schedules()] == [tick + 60]
    assert not checkpointer.advance_schedule("missing", tick, tick + 60)


# -- streams ------------------------------------------------------------------------------


def stream_entry(run_id: str, step_id: str, key: str = "progress") -> JournalEntry:
    now = time.time()
    return JournalEntry(
        run_id=run_id, step_id=step_id, kind=EntryKind.STREAM, name=key,
        started_at=now, finished_at=now,
    )  # fmt: skip


def test_a_stream_append_takes_the_next_offset_and_is_journaled_with_it(
    checkpointer: Checkpointer,
) -> None:
    run_id = start(checkpointer)
    token = claim(checkpointer, run_id).token
    writes = [("1", "a", "x"), ("2", "b", 1), ("3", "a", {"y": 2})]
    offsets = [
        checkpointer.append_stream(run_id, token, k, json.dumps(v), stream_entry(run_id, sid, k))
        for sid, k, v in writes
    ]
    assert offsets == [0, 0, 1]
    page = checkpointer.read_stream(run_id, "a")
    assert [(i.offset, json.loads(i.value)) for i in page.items] == [(0, "x"), (1, {"y": 2})]
    assert {i.attempt for i in page.items} == {1} and not page.closed
    assert [(e.step_id, e.kind, e.value) for e in checkpointer.journal(run_id)] == [
        ("1", EntryKind.STREAM, "0"), ("2", EntryKind.STREAM, "0"), ("3", EntryKind.STREAM, "1"),
    ]  # fmt: skip
    assert [i.offset for i in checkpointer.read_stream(run_id, "a", offset=1).items] == [1]
    assert checkpointer.read_stream(run_id, "a", offset=2).items == []
    assert checkpointer.read_stream(run_id, "nothing").items == []


def test_a_stream_append_without_the_lease_writes_nothing(checkpointer: Checkpointer) -> None:
    run_id = start(checkpointer)
    old = claim(checkpointer, run_id, lease=0.05).token
    time.sleep(0.1)
    new = claim(checkpointer, run_id).token
    with pytest.raises(LeaseLost):
        checkpointer.append_stream(run_id, old, "a", "1", stream_entry(run_id, "1", "a"))
    assert checkpointer.read_stream(run_id, "a").items == []
    assert checkpointer.journal(run_id) == []
    assert checkpointer.append_stream(run_id, new, "a", "1", stream_entry(run_id, "1", "a")) == 0
    assert checkpointer.read_stream(run_id, "a").items[0].attempt == 2


def test_a_stream_is_closed_once_its_run_has_ended(checkpointer: Checkpointer) -> None:
    run_id = start(checkpointer)
    token = claim(checkpointer, run_id).token
    checkpointer.append_stream(run_id, token, "a", "1", stream_entry(run_id, "1", "a"))
    assert not checkpointer.read_stream(run_id, "a").closed
    checkpointer.complete(run_id, token, "null")
    page = checkpointer.read_stream(run_id, "a")
    assert page.closed and [i.offset for i in page.items] == [0]
    assert not checkpointer.read_stream(run_id, "a", limit=1).closed  # a full page: read on
    assert checkpointer.read_stream(run_id, "a", offset=1).closed
    with pytest.raises(RunNotFound):
        checkpointer.read_stream("no-such-run", "a")


def test_pruning_a_run_drops_its_streams(checkpointer: Checkpointer) -> None:
    run_id = start(checkpointer)
    token = claim(checkpointer, run_id).token
    checkpointer.append_stream(run_id, token, "a", "1", stream_entry(run_id, "1", "a"))
    checkpointer.complete(run_id, token, "null")
    checkpointer.prune(finished_before=time.time() + 60)
    with pytest.raises(RunNotFound):
        checkpointer.read_stream(run_id, "a")


def test_wait_for_work_returns_when_a_stream_grows(checkpointer: Checkpointer) -> None:
    run_id = start(checkpointer)
    token = claim(checkpointer, run_id).token
    checkpointer.wait_for_work(0.0)  # subscribe
    waiter = threading.Thread(target=checkpointer.wait_for_work, args=(60.0,))
    waiting = time.monotonic()
    waiter.start()
    time.sleep(0.2)
    # from a thread that has not written yet: its first statement must not queue behind the
    # waiter's LISTEN (it did, for the whole 60 s, on PostgreSQL)
    appender = threading.Thread(
        target=checkpointer.append_stream,
        args=(run_id, token, "a", "1", stream_entry(run_id, "1", "a")),
    )
    appender.start()
    waiter.join(timeout=30)
    appender.join(timeout=30)
    assert not waiter.is_alive() and not appender.is_alive()
    assert time.monotonic() - waiting < 30  # woken by the append, not by its 60 s timeout
    assert [i.value for i in checkpointer.read_stream(run_id, "a").items] == ["1"]


# -- wake-ups -----------------------------------------------------------------------------


def test_wait_for_work_returns_when_a_run_becomes_runnable(checkpointer: Checkpointer) -> None:
    checkpointer.wait_for_work(0.0)  # subscribe
    waiter = threading.Thread(target=checkpointer.wait_for_work, args=(60.0,))
    waiter.start()
    time.sleep(0.2)  # let it settle into waiting (SQLite: read its first data_version)
    waiting = time.monotonic()
    start(checkpointer)
    waiter.join(timeout=30)
    assert not waiter.is_alive()
    assert time.monotonic() - waiting < 30  # woken by the run, not by its 60 s timeout


# -- the database itself ------------------------------------------------------------------


@pytest.mark.postgres
def test_a_postgres_schema_written_by_a_newer_tether_is_refused(
    pg_schema: tuple[str, str],
) -> None:
    from tether.foundation.checkpoint.backends.postgres import PostgresCheckpointer

    url, schema = pg_schema
    PostgresCheckpointer(url, schema=schema).close()
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"UPDATE {schema}.tether_schema SET version = 99")
    with pytest.raises(SchemaVersionError, match="version 99"):
        PostgresCheckpointer(url, schema=schema)


def test_a_sqlite_file_written_by_a_newer_tether_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tether.db'}"
    SqliteCheckpointer(url).close()
    with sqlite3.connect(tmp_path / "tether.db") as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(SchemaVersionError, match="99"):
        SqliteCheckpointer(url)


@pytest.mark.postgres
def test_an_older_postgres_schema_is_migrated_forward_at_start(
    pg_schema: tuple[str, str],
) -> None:
    from tether.foundation.checkpoint.backends.postgres import PostgresCheckpointer

    url, schema = pg_schema
    first = PostgresCheckpointer(url, schema=schema)
    run_id = start(first)
    first.close()
    with psycopg.connect(url, autocommit=True) as admin:  # as version 1 left it
        admin.execute(f"DROP TABLE {schema}.schedules")
        admin.execute(f"DROP TABLE {schema}.streams")
        admin.execute(f"UPDATE {schema}.tether_schema SET version = 1")
    again = PostgresCheckpointer(url, schema=schema)
    try:
        assert again.get_run(run_id).status is RunStatus.PENDING
        again.put_schedule(Schedule(name="s", cron="* * * * *", workflow="wf", next_at=1))
        assert [s.name for s in again.schedules()] == ["s"]
        assert again.read_stream(run_id, "progress").items == []
    finally:
        again.close()


@pytest.mark.postgres
def test_postgres_unreachable_is_one_line_naming_the_dsn_without_its_password() -> None:
    from tether.foundation.checkpoint.backends.postgres import PostgresCheckpointer

    with pytest.raises(DatabaseUnavailable) as e:
        PostgresCheckpointer("postgresql://tether:s3cret@127.0.0.1:1/test", connect_timeout=2)
    message = str(e.value)
    assert "s3cret" not in message and "\n" not in message
    assert "postgresql://tether:***@127.0.0.1:1/test" in message


@pytest.mark.postgres
def test_two_postgres_schemas_on_one_database_do_not_see_each_other() -> None:
    from tether.foundation.checkpoint.backends.postgres import PostgresCheckpointer

    with fresh_schema("cp") as (url, a), fresh_schema("cp") as (_, b):
        first, second = PostgresCheckpointer(url, schema=a), PostgresCheckpointer(url, schema=b)
        try:
            start(first)
            assert second.list_runs(RunFilter()) == []
            assert first.channel != second.channel  # type: ignore[attr-defined]
        finally:
            first.close()
            second.close()


# -- thread checkpoints (integrations/langgraph) --------------------------------------------


def thread_cp(thread: str, cid: str, ns: str = "", parent: str | None = None) -> ThreadCheckpoint:
    return ThreadCheckpoint(thread, ns, cid, parent, "g@1.0.0", "json", cid.encode(), "{}")


def test_a_thread_checkpoint_comes_back_as_stored_and_a_put_replaces_it(
    checkpointer: Checkpointer,
) -> None:
    assert isinstance(checkpointer, ThreadCheckpoints)
    checkpointer.put_thread_checkpoint(thread_cp("t", "01", parent=None))
    checkpointer.put_thread_checkpoint(thread_cp("t", "02", parent="01"))
    assert checkpointer.thread_checkpoint("t", "", None) == thread_cp("t", "02", parent="01")
    assert checkpointer.thread_checkpoint("t", "", "01") == thread_cp("t", "01")
    assert checkpointer.thread_checkpoint("t", "other", None) is None
    checkpointer.put_thread_checkpoint(replace(thread_cp("t", "01"), metadata='{"a": 1}'))
    got = checkpointer.thread_checkpoint("t", "", "01")
    assert got is not None and got.metadata == '{"a": 1}'


def test_thread_checkpoints_list_newest_first_by_thread_ns_before_and_limit(
    checkpointer: Checkpointer,
) -> None:
    assert isinstance(checkpointer, ThreadCheckpoints)
    for thread, cid, ns in [("a", "1", ""), ("a", "2", ""), ("a", "3", "sub"), ("b", "4", "")]:
        checkpointer.put_thread_checkpoint(thread_cp(thread, cid, ns))

    def ids(**query: object) -> list[str]:
        found = checkpointer.thread_checkpoints(ThreadQuery(**query))  # type: ignore[arg-type]
        return [c.checkpoint_id for c in found]

    assert ids() == ["4", "3", "2", "1"]
    assert ids(thread_id="a") == ["3", "2", "1"]
    assert ids(thread_id="a", ns="") == ["2", "1"]
    assert ids(before="3") == ["2", "1"]
    assert ids(limit=2) == ["4", "3"]
    assert ids(checkpoint_id="2") == ["2"]


def test_a_plain_write_is_kept_and_a_replacing_write_replaces(checkpointer: Checkpointer) -> None:
    assert isinstance(checkpointer, ThreadCheckpoints)
    first = [ThreadWrite("task", 0, "a", "json", b"1"), ThreadWrite("task", 1, "b", "json", b"2")]
    checkpointer.put_thread_writes("t", "", "1", first, replace=False)
    checkpointer.put_thread_writes("t", "", "1", [ThreadWrite("task", 0, "a", "json", b"9")],
                                   replace=False)  # fmt: skip
    assert checkpointer.thread_writes("t", "", "1") == first
    error = ThreadWrite("task", -1, "__error__", "json", b"x")
    checkpointer.put_thread_writes("t", "", "1", [error], replace=True)
    checkpointer.put_thread_writes("t", "", "1", [replace(error, value=b"y")], replace=True)
    assert checkpointer.thread_writes("t", "", "1") == [replace(error, value=b"y"), *first]
    assert checkpointer.thread_writes("t", "", "2") == []


def test_deleting_a_thread_removes_its_checkpoints_and_writes_in_every_namespace(
    checkpointer: Checkpointer,
) -> None:
    assert isinstance(checkpointer, ThreadCheckpoints)
    for thread, ns in [("t", ""), ("t", "sub"), ("u", "")]:
        checkpointer.put_thread_checkpoint(thread_cp(thread, "1", ns))
        checkpointer.put_thread_writes(thread, ns, "1", [ThreadWrite("k", 0, "c", "j", b"v")],
                                       replace=False)  # fmt: skip
    checkpointer.delete_thread("t")
    assert [c.thread_id for c in checkpointer.thread_checkpoints(ThreadQuery())] == ["u"]
    assert checkpointer.thread_writes("t", "sub", "1") == []
    assert len(checkpointer.thread_writes("u", "", "1")) == 1


def test_thread_ids_come_back_as_written_and_in_their_texts_order(
    checkpointer: Checkpointer,
) -> None:
    """The SQL tables keep a uuid id as its 16 bytes (thread_ids.py): ids, parents and task ids
    read back as their text, 16-character ids that are not uuids too, and `before` keeps the
    text's order."""
    assert isinstance(checkpointer, ThreadCheckpoints)
    ids = sorted(str(uuid.uuid1()) for _ in range(4))
    for parent, cid in zip([None, *ids], ids, strict=False):
        checkpointer.put_thread_checkpoint(thread_cp("t", cid, parent=parent))
    checkpointer.put_thread_checkpoint(thread_cp("u", "sixteen-chars-id", parent="a"))
    task = str(uuid.uuid4())
    checkpointer.put_thread_writes("t", "", ids[1], [ThreadWrite(task, 0, "c", "j", b"v")],
                                   replace=False)  # fmt: skip

    found = checkpointer.thread_checkpoints(ThreadQuery(thread_id="t", before=ids[3]))
    assert [(c.checkpoint_id, c.parent_id) for c in found] == [
        (ids[2], ids[1]), (ids[1], ids[0]), (ids[0], None)
    ]  # fmt: skip
    assert checkpointer.thread_checkpoint("u", "", None) == thread_cp(
        "u", "sixteen-chars-id", parent="a"
    )
    assert [w.task_id for w in checkpointer.thread_writes("t", "", ids[1])] == [task]


_SAVERS = "q83vEjRWeJCrze8SNFZ4"  # a hash in the LangGraph saver's form
_OLDER = "ab" * 32  # and one as hex, as stored before


def _text_thread_rows(db: Any, mark: str) -> None:
    """A checkpoint, a write and two blobs as version 7 stored them, ids, hashes and refs as
    text (`mark`: the database's placeholder)."""
    db.execute(
        "INSERT INTO thread_checkpoints (thread_id, ns, checkpoint_id, parent_id, graph, type, "
        "checkpoint, metadata, refs) VALUES ('t', '', '1f0c0000-0000-6000-8000-000000000002', "
        f"'sixteen-chars-id', 'g@1.0.0', 'json', {mark}, '{{}}', '{_SAVERS} {_OLDER}')",
        (b"x",),
    )
    db.execute(
        "INSERT INTO thread_writes (thread_id, ns, checkpoint_id, task_id, idx, channel, type, "
        "value, task_path, refs) VALUES ('t', '', '1f0c0000-0000-6000-8000-000000000002', "
        f"'0c0f0000-0000-5000-8000-000000000001', 0, 'c', 'j', {mark}, '', '{_SAVERS}')",
        (b"v",),
    )
    db.execute(
        f"INSERT INTO thread_blobs (hash, type, value, refs) VALUES ('{_SAVERS}', 'm', {mark}, ''),"
        f" ('{_OLDER}', '~list', {mark}, '{_SAVERS}')",
        (b"body", b""),
    )


def _reads_the_text_rows(checkpointer: ThreadCheckpoints) -> None:
    got = checkpointer.thread_checkpoint("t", "", None)
    assert got is not None
    assert (got.checkpoint_id, got.parent_id) == (
        "1f0c0000-0000-6000-8000-000000000002", "sixteen-chars-id"
    )  # fmt: skip
    assert got.refs == (_SAVERS, _OLDER)
    writes = checkpointer.thread_writes("t", "", "1f0c0000-0000-6000-8000-000000000002")
    assert [(w.task_id, w.refs) for w in writes] == [
        ("0c0f0000-0000-5000-8000-000000000001", (_SAVERS,))
    ]
    assert checkpointer.thread_blobs([_SAVERS, _OLDER]) == {
        _SAVERS: ThreadBlob(_SAVERS, "m", b"body", ()),
        _OLDER: ThreadBlob(_OLDER, "~list", b"", (_SAVERS,)),
    }


def test_a_sqlite_file_with_thread_ids_as_text_is_migrated_to_read_them_back(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'tether.db'}"
    SqliteCheckpointer(url).close()
    with sqlite3.connect(tmp_path / "tether.db") as db:
        _text_thread_rows(db, "?")
        db.execute("PRAGMA user_version = 7")
    again = SqliteCheckpointer(url)
    try:
        _reads_the_text_rows(again)
    finally:
        again.close()


@pytest.mark.postgres
def test_a_postgres_schema_with_thread_ids_as_text_is_migrated_to_read_them_back(
    pg_schema: tuple[str, str],
) -> None:
    from tether.foundation.checkpoint.backends.postgres import PostgresCheckpointer

    url, schema = pg_schema
    PostgresCheckpointer(url, schema=schema).close()
    with psycopg.connect(url, autocommit=True) as admin:  # as version 7 left it
        admin.execute(f"SET search_path TO {schema}")
        for table, columns in [("thread_checkpoints", ["checkpoint_id", "parent_id"]),
                               ("thread_writes", ["checkpoint_id", "task_id"])]:  # fmt: skip
            for c in columns:
                admin.execute(f"ALTER TABLE {table} ALTER COLUMN {c} TYPE TEXT USING ''")
        for table in ["thread_checkpoints", "thread_writes", "thread_blobs"]:
            admin.execute(f"ALTER TABLE {table} ALTER COLUMN refs TYPE TEXT USING ''")
        admin.execute("ALTER TABLE thread_blobs ALTER COLUMN hash TYPE TEXT USING ''")
        _text_thread_rows(admin, "%s")
        admin.execute("UPDATE tether_schema SET version = 7")
    again = PostgresCheckpointer(url, schema=schema)
    try:
        _reads_the_text_rows(again)
    finally:
        again.close()


# -- forks --------------------------------------------------------------------------------


def test_a_forked_run_starts_pending_with_the_journal_it_was_given(
    checkpointer: Checkpointer,
) -> None:
    new_id = uuid.uuid4().hex
    entries = [step(new_id, "1", "a"), step(new_id, "2", "b")]
    run = checkpointer.fork_run(
        NewRun(id=new_id, workflow="wf", version="1.0.0", input="{}", meta={"forked_from": "x"}),
        entries,
    )
    assert run.status is RunStatus.PENDING and run.meta == {"forked_from": "x"}
    assert [e.step_id for e in checkpointer.journal(new_id)] == ["1", "2"]
    claimed = claim(checkpointer, new_id)
    assert [(e.step_id, e.value) for e in claimed.journal] == [("1", '"a"'), ("2", '"b"')]
