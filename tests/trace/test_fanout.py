"""Several trace sinks at once: `trace = "jsonl,memory"` sends every span of a run to each, and
one sink that raises neither fails the run nor keeps the others from their spans."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import FAST
from tether import RunStatus, Settings, Tether
from tether.errors import ConfigurationError
from tether.foundation.trace.backends.jsonl import JsonlTraceSink
from tether.foundation.trace.contract import Span
from tether.foundation.trace.fanout import FanoutTraceSink
from tether.foundation.trace.memory import MemoryTraceSink


def test_a_run_traced_to_two_sinks_reaches_both_whole(make_tether: Callable[..., Tether]) -> None:
    t = make_tether("sqlite", trace="jsonl, memory")
    assert t.run(t.start("steps", {"n": 3})).status is RunStatus.COMPLETED
    fan = t.sink
    assert isinstance(fan, FanoutTraceSink)
    jsonl, memory = fan.sinks
    assert isinstance(jsonl, JsonlTraceSink) and isinstance(memory, MemoryTraceSink)
    assert jsonl.read() == memory.spans
    assert sorted(s.name for s in memory.spans) == ["run steps", "step step 0", "step step 1",
                                                    "step step 2"]  # fmt: skip


class Broken:
    def emit(self, span: Span) -> None:
        raise OSError("disk full")

    def flush(self) -> None:
        raise OSError("disk full")

    def close(self) -> None:
        raise OSError("disk full")


def test_a_failing_sink_does_not_fail_the_run_or_starve_the_others(tmp_path: Path) -> None:
    memory = MemoryTraceSink()
    settings = Settings(data_dir=tmp_path, workflows=["tests.runtime.flows"], **FAST)
    with Tether(settings, sink=FanoutTraceSink([Broken(), memory])) as t:
        assert t.run(t.start("steps", {"n": 2})).status is RunStatus.COMPLETED
    assert len(memory.spans) == 3


@pytest.mark.parametrize("names", ["jsonl,jsonl", " , "])
def test_a_trace_setting_naming_a_backend_twice_or_none_is_refused(
    make_tether: Callable[..., Tether], names: str
) -> None:
    with pytest.raises(ConfigurationError, match="trace"):
        make_tether("sqlite", trace=names)
