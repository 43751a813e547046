"""Group commit across runs: appends that arrive while a commit is in flight share the next one,
each run moves on only once its rows are committed, and a fenced run fails alone."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from tether import RunStatus, Tether
from tether.foundation.checkpoint.backends.sqlite import SqliteCheckpointer
from tether.foundation.checkpoint.contract import (
    Accept,
    Append,
    EntryKind,
    JournalEntry,
    LeaseLost,
    NewRun,
)
from tether.runtime.commits import GroupCommit


class HeldFirstCommit(SqliteCheckpointer):
    """A real SQLite checkpointer whose first commit stays in flight until `release` is set,
    and which keeps the size of every shared commit."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.release = threading.Event()
        self.shared: list[int] = []

    def append(self, run_id: str, token: str, entries: Sequence[JournalEntry]) -> None:
        self.release.wait(10)
        super().append(run_id, token, entries)

    def complete(
        self, run_id: str, token: str, output: str, entries: Sequence[JournalEntry] = ()
    ) -> None:
        self.release.wait(10)
        super().complete(run_id, token, output, entries)

    def append_many(self, appends: Sequence[Append]) -> list[Exception | None]:
        self.shared.append(len(appends))
        return super().append_many(appends)


def _claimed(cp: SqliteCheckpointer, lease: float = 30.0) -> tuple[str, str]:
    run_id = uuid.uuid4().hex
    cp.create_run(NewRun(id=run_id, workflow="wf", version="1.0.0", input="{}"))
    [claim] = cp.claim("w1", [Accept(workflow="wf", version="1.*")], 1, lease, run_id=run_id)
    return run_id, claim.token


def _step(run_id: str) -> JournalEntry:
    now = time.time()
    return JournalEntry(
        run_id=run_id, step_id="1", kind=EntryKind.STEP, name="s", value="1",
        started_at=now, finished_at=now,
    )  # fmt: skip


def test_appends_queued_behind_a_commit_in_flight_share_the_next_and_a_fenced_one_fails_alone(
    tmp_path: Path,
) -> None:
    cp = HeldFirstCommit(f"sqlite:///{tmp_path / 'runs.db'}")
    commits = GroupCommit(cp)
    first = _claimed(cp)
    queued = [_claimed(cp) for _ in range(4)]
    fenced, _ = _claimed(cp, lease=0.05)
    time.sleep(0.2)
    cp.claim("w2", [Accept(workflow="wf", version="1.*")], 1, 30.0, run_id=fenced)
    outcomes: dict[str, str] = {}

    def append(run_id: str, token: str) -> None:
        try:
            commits.append(run_id, token, [_step(run_id)])
            outcomes[run_id] = "committed"
        except LeaseLost:
            outcomes[run_id] = "lease lost"

    threads = [threading.Thread(target=append, args=first)]
    threads[0].start()
    time.sleep(0.1)  # the first append is now the commit in flight
    for run_id, token in [*queued, (fenced, "w1's stale token")]:
        threads.append(threading.Thread(target=append, args=(run_id, token)))
        threads[-1].start()
    time.sleep(0.2)
    assert outcomes == {}  # nobody moves on before the commit holding its row
    cp.release.set()
    for t in threads:
        t.join(10)
    assert cp.shared == [5]  # the four queued appends and the fenced one: one transaction
    assert outcomes == {
        first[0]: "committed",
        **{run_id: "committed" for run_id, _ in queued},
        fenced: "lease lost",
    }
    assert [len(cp.journal(r)) for r, _ in [first, *queued]] == [1] * 5
    assert cp.journal(fenced) == []
    commits.close()
    cp.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def durable(request: pytest.FixtureRequest, make_tether: Callable[..., Tether]) -> Iterator[Tether]:
    if request.param == "sqlite":
        yield make_tether("sqlite")
        return
    from tests.postgres.server import fresh_schema

    with fresh_schema("gc") as (url, schema):
        t = make_tether("postgres", checkpoint_database_url=url, checkpoint_schema=schema)
        yield t
        t.close()


def test_a_worker_running_many_runs_at_once_completes_each_with_its_own_journal(
    durable: Tether,
) -> None:
    runs = [durable.start("steps", {"n": 10}) for _ in range(24)]
    durable.worker(concurrency=16).run(until_idle=True)
    for run_id in runs:
        run = durable.status(run_id)
        assert (run.status, durable.output(run)) == (RunStatus.COMPLETED, {"total": 45})
        assert [e.step_id for e in durable.journal(run_id)] == [str(i + 1) for i in range(10)]


def test_a_completion_queued_behind_a_commit_in_flight_shares_the_next_one(tmp_path: Path) -> None:
    cp = HeldFirstCommit(f"sqlite:///{tmp_path / 'runs.db'}")
    commits = GroupCommit(cp)
    first, finishing, stepping = _claimed(cp), _claimed(cp), _claimed(cp)
    threads = [threading.Thread(target=commits.append, args=(*first, [_step(first[0])]))]
    threads[0].start()
    time.sleep(0.1)
    threads += [
        threading.Thread(
            target=commits.complete, args=(*finishing, '"out"', [_step(finishing[0])])
        ),
        threading.Thread(target=commits.append, args=(*stepping, [_step(stepping[0])])),
    ]
    for t in threads[1:]:
        t.start()
    time.sleep(0.2)
    cp.release.set()
    for t in threads:
        t.join(10)
    assert cp.shared == [2]
    run = cp.get_run(finishing[0])
    assert (run.status, run.output) == (RunStatus.COMPLETED, '"out"')
    assert [len(cp.journal(r)) for r in (first[0], finishing[0], stepping[0])] == [1, 1, 1]
    commits.close()
    cp.close()


def test_children_completing_in_shared_commits_wake_each_parent_once(durable: Tether) -> None:
    """A child's completion in a shared commit delivers its result to its parent, as a commit
    of its own does: every parent finishes with its child's output."""
    parents = [durable.start("parent", {"seconds": 0.05}) for _ in range(12)]
    deadline = time.time() + 60
    while not all(durable.status(p).status is RunStatus.COMPLETED for p in parents):
        assert time.time() < deadline, "parents did not finish"
        durable.worker(concurrency=16).run(until_idle=True)
        time.sleep(0.05)  # the children's naps
    for run_id in parents:
        run = durable.status(run_id)
        assert durable.output(run) == {"total": 4}
        assert [e.kind for e in durable.journal(run_id)] == ["invoke"]
