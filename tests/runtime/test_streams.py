"""Streams: a run's values reach its readers live, once each, and survive a replay."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.runtime.flows import CALLS
from tests.workers import kill_worker_when, run_worker_until
from tether import RunStatus, Tether
from tether.errors import RunNotFound


def values(t: Tether, run_id: str, offset: int = 0, follow: bool = False) -> list[object]:
    return [json.loads(i.value) for i in t.stream(run_id, "progress", offset, follow=follow)]


def test_stream_values_are_read_in_order_from_any_offset(tether: Tether) -> None:
    run_id = tether.start("streamer", {"n": 4})
    assert tether.run(run_id).status is RunStatus.COMPLETED
    assert values(tether, run_id) == [{"i": i} for i in range(4)]
    assert values(tether, run_id, offset=2) == [{"i": 2}, {"i": 3}]
    assert [e.value for e in tether.journal(run_id)] == ["0", "1", "2", "3"]


def test_a_replayed_run_does_not_write_its_values_again(tether: Tether) -> None:
    CALLS.clear()
    run_id = tether.start("streamer", {"n": 4, "nap": 1.0})  # outlasts stopping the worker
    stop = threading.Event()
    tether.run(run_id, stop=stop, on_wait=lambda _run: stop.set())
    assert tether.status(run_id).status is RunStatus.SLEEPING
    assert values(tether, run_id) == [{"i": 0}, {"i": 1}]
    assert tether.run(run_id).status is RunStatus.COMPLETED
    items = list(tether.stream(run_id, "progress"))
    assert [(i.offset, json.loads(i.value)) for i in items] == [(n, {"i": n}) for n in range(4)]
    assert items[0].attempt == items[1].attempt < items[2].attempt  # a later claim wrote the rest
    assert CALLS["stream 0"] >= 2  # the workflow body ran again; its append did not


def test_a_follower_sees_each_value_live_and_stops_when_the_run_ends(tether: Tether) -> None:
    run_id = tether.start("streamer", {"n": 6, "nap": 0.3})
    seen: list[object] = []
    reader = threading.Thread(target=lambda: seen.extend(values(tether, run_id, follow=True)))
    reader.start()
    assert tether.run(run_id).status is RunStatus.COMPLETED
    reader.join(timeout=30)
    assert not reader.is_alive()
    assert seen == [{"i": i} for i in range(6)]


def test_a_reader_reconnecting_from_its_offset_misses_nothing_and_repeats_nothing(
    tether: Tether,
) -> None:
    run_id = tether.start("streamer", {"n": 6, "nap": 0.2})
    stop = threading.Event()
    tether.run(run_id, stop=stop, on_wait=lambda _run: stop.set())
    first = list(tether.stream(run_id, "progress", follow=False))
    assert tether.run(run_id).status is RunStatus.COMPLETED
    rest = values(tether, run_id, offset=first[-1].offset + 1, follow=True)
    assert [json.loads(i.value) for i in first] + rest == [{"i": i} for i in range(6)]


def test_a_stream_key_that_is_not_a_string_is_refused(tether: Tether) -> None:
    run_id = tether.start("streamer", {"n": 1, "key": 7})
    run = tether.run(run_id)
    assert run.status is RunStatus.FAILED
    assert "stream key is a non-empty string, not 7" in (run.error or "")
    with pytest.raises(TypeError, match="stream key"):
        list(tether.stream(run_id, 7))  # type: ignore[arg-type]
    with pytest.raises(RunNotFound):
        list(tether.stream("no-such-run", "progress"))


def test_a_reader_across_a_kill_minus_9_sees_every_value_once(
    make_tether: Callable[..., Tether], tmp_path: Path
) -> None:
    t = make_tether("sqlite")
    log, data_dir = tmp_path / "effects.log", tmp_path / ".tether"
    run_id = t.start("streamer", {"n": 8, "log": str(log), "pause": 0.15})
    seen: list[object] = []
    reader = threading.Thread(target=lambda: seen.extend(values(t, run_id, follow=True)))
    reader.start()
    kill_worker_when(data_dir, lambda: log.exists() and len(log.read_text().splitlines()) >= 3)
    before = len(values(t, run_id))
    assert t.status(run_id).status is RunStatus.RUNNING  # the lease is still the dead worker's
    run_worker_until(data_dir, lambda: t.status(run_id).status is RunStatus.COMPLETED)
    reader.join(timeout=30)
    assert not reader.is_alive()
    assert before >= 2 and seen == [{"i": i} for i in range(8)]
    assert [e.value for e in t.journal(run_id) if e.name == "progress"] == [
        str(i) for i in range(8)
    ]
