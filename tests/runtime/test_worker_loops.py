"""A worker that stops closes the event loops its run threads made: left to the garbage
collector with their threads, a loop could meet its self-pipe closed first and print a
traceback to the worker's stderr at exit (seen after a PostgreSQL restart, one stop in three)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from tether import RunStatus, Tether


def test_a_stopped_workers_run_threads_leave_no_open_event_loop(
    make_tether: Callable[..., Tether], monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[asyncio.AbstractEventLoop] = []
    new_event_loop = asyncio.new_event_loop

    def recording() -> asyncio.AbstractEventLoop:
        loop = new_event_loop()
        made.append(loop)
        return loop

    monkeypatch.setattr(asyncio, "new_event_loop", recording)
    t = make_tether("sqlite")
    runs = [t.start("steps", {"n": 2}) for _ in range(4)]
    t.worker(concurrency=2).run(until_idle=True)
    assert {t.status(r).status for r in runs} == {RunStatus.COMPLETED}
    run_loops = [loop for loop in made if not loop.is_running()]
    assert run_loops, "the worker's run threads made no loop of their own"
    assert all(loop.is_closed() for loop in run_loops)
