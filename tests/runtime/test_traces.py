"""Traces: every run, step and delivered event/timer emits one span, and a replay emits none
for what it only read back from the journal."""

from __future__ import annotations

import threading
from collections.abc import Callable

from tether import RunStatus, Tether


def test_run_step_and_event_spans_once_each_across_park_and_resume(
    make_tether: Callable[..., Tether],
) -> None:
    t = make_tether("sqlite")
    run_id = t.start("approval", {"ticket": "T-3"})
    stop = threading.Event()
    t.run(run_id, stop=stop, on_wait=lambda _run: stop.set())
    t.send_event("approved", {"ticket": "T-3"})
    assert t.run(run_id).status is RunStatus.COMPLETED
    spans = t.sink.spans  # type: ignore[attr-defined]
    names = [s.name for s in spans]
    assert names.count("event approval") == 1
    assert names.count("run approval") == 1
    assert {s.trace_id for s in spans} == {spans[0].trace_id}


def test_replaying_finished_steps_emits_no_span(make_tether: Callable[..., Tether]) -> None:
    t = make_tether("sqlite")
    run_id = t.start("nap", {"seconds": 0.05})
    stop = threading.Event()
    t.run(run_id, stop=stop, on_wait=lambda _run: stop.set())
    assert t.run(run_id).status is RunStatus.COMPLETED
    names = [s.name for s in t.sink.spans]  # type: ignore[attr-defined]
    assert names.count("step before") == 1  # executed once, replayed once: one span
    assert names.count("sleep nap") == 1 and names.count("step after") == 1


def test_a_running_runs_step_spans_reach_the_sink_within_a_second(
    make_tether: Callable[..., Tether],
) -> None:
    """Spans are queued and built in batches, but not held back longer than SPAN_DELAY: once a
    step ends over a second after the oldest queued one, the spans so far reach the sink."""
    from tests.runtime import flows

    t = make_tether("sqlite")
    flows.SEEN["sink"] = t.sink
    try:
        run = t.run(t.start("watched", {"n": 5, "pause": 0.35}))
    finally:
        flows.SEEN.clear()
    seen = t.output(run)
    assert seen[:4] == [0, 0, 0, 0]  # steps 0-2 ended about 0.7 s apart: still queued
    assert seen[4] == 4  # step 3 ended at least 1.05 s after step 0: the four went out
    assert len(t.sink.named("step ")) == 5  # type: ignore[attr-defined]
