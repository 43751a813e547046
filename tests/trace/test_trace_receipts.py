"""The I4 receipts, counted at the wire by a recording OTLP receiver.

- Trace backend swap: the research agent traced to `jsonl`, then `phoenix`, then `langfuse`
  (each to the receiver) gives the same span tree, by configuration alone.
- Kill -9 a worker mid-run and resume on another: the OTLP requests that left both processes
  carry no span twice, all in the run's one trace, and exactly one for every step finished
  after the resume. Spans of steps the killed worker had committed but not yet sent die with
  it (spans are built after the commit and never again on replay, so a crash can lose the
  last seconds of spans, never double them); killed after its spans had left (a park sends
  them), every finished entry has exactly one span. docs/tracing.md says why.
- A down collector neither fails nor blocks a run; a worker keeps a bounded buffer and logs
  one warning with the count of spans it dropped.
"""

from __future__ import annotations

import base64
import logging
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.otlp_receiver import OtlpReceiver, WireSpan
from tests.workers import kill_worker_when, run_worker_until, start_worker, wait_for
from tether import RunStatus, Settings, Tether
from tether.foundation.trace.backends.jsonl import JsonlTraceSink
from tether.foundation.trace.contract import Span, trace_id_for

KEY_ATTRIBUTES = (
    "tether.step.id",
    "gen_ai.operation.name",
    "gen_ai.request.model",
    "gen_ai.tool.name",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
)
LANGFUSE_AUTH = "Basic " + base64.b64encode(b"pk-lf-t:sk-lf-t").decode()


def tree(spans: list[Span] | list[WireSpan]) -> list[tuple[Any, ...]]:
    """Each span as (name, its parent's name, status, key attributes): the tree, without ids
    (each run has its own) or times."""
    names = {s.span_id: s.name for s in spans}
    return sorted(
        (
            s.name,
            names.get(s.parent_span_id or ""),
            s.status,
            tuple(s.attributes.get(k) for k in KEY_ATTRIBUTES),
        )
        for s in spans
    )


def research(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trace: str, **env: str) -> str:
    """One research_report run configured only by environment variables, as a deployment is."""
    monkeypatch.setenv("TETHER_TRACE", trace)
    monkeypatch.setenv("TETHER_DATA_DIR", str(tmp_path / trace))
    monkeypatch.setenv("TETHER_POLL_INTERVAL", "0.02")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with Tether.from_env() as t:
        run_id = t.start("research_report", {"topic": "leases", "review_pause_seconds": 0})
        assert t.run(run_id).status is RunStatus.COMPLETED
    return run_id


@pytest.mark.slow
def test_trace_backend_swap_gives_the_same_span_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    research(tmp_path, monkeypatch, "jsonl")
    dump = JsonlTraceSink(tmp_path / "jsonl" / "traces.jsonl").read()
    phoenix = OtlpReceiver()
    langfuse = OtlpReceiver("/api/public/otel/v1/traces", auth=LANGFUSE_AUTH)
    try:
        research(tmp_path, monkeypatch, "phoenix", TETHER_PHOENIX_ENDPOINT=phoenix.url)
        research(tmp_path, monkeypatch, "langfuse", TETHER_LANGFUSE_HOST=langfuse.url,
                 LANGFUSE_PUBLIC_KEY="pk-lf-t", LANGFUSE_SECRET_KEY="sk-lf-t")  # fmt: skip
    finally:
        phoenix.close()
        langfuse.close()
    assert len(dump) == 16
    assert tree(phoenix.spans) == tree(dump) == tree(langfuse.spans)

    kinds = Counter(s.attributes["openinference.span.kind"] for s in phoenix.spans)
    prefixes = Counter(s.name.partition(" ")[0] for s in dump)
    chains = prefixes["step"] + prefixes["sleep"] + prefixes["gather"]
    assert kinds == {"AGENT": 1, "LLM": prefixes["model"], "TOOL": prefixes["tool"],
                     "CHAIN": chains}  # fmt: skip
    llm = next(s for s in phoenix.spans if s.attributes["openinference.span.kind"] == "LLM")
    assert llm.attributes["llm.token_count.prompt"] == llm.attributes["gen_ai.usage.input_tokens"]
    assert llm.attributes["llm.model_name"] and llm.attributes["input.value"]
    assert phoenix.spans[0].resource["openinference.project.name"] == "tether"

    assert {r.headers["authorization"] for r in langfuse.requests} == {LANGFUSE_AUTH}
    types = Counter(s.attributes["langfuse.observation.type"] for s in langfuse.spans)
    assert types["agent"] == 1 and types["generation"] == kinds["LLM"]
    assert types["tool"] == kinds["TOOL"]
    generation = next(
        s for s in langfuse.spans if s.attributes["langfuse.observation.type"] == "generation"
    )
    assert '"input"' in generation.attributes["langfuse.observation.usage_details"]
    root = next(s for s in langfuse.spans if s.parent_span_id is None)
    assert root.attributes["langfuse.trace.name"] == "research_report"


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    r = OtlpReceiver()
    yield r
    r.close()


@pytest.mark.slow
def test_kill_minus_9_and_resume_sends_no_span_twice_all_in_one_trace(
    make_tether: Callable[..., Tether], tmp_path: Path, receiver: OtlpReceiver
) -> None:
    t = make_tether("sqlite")
    env = {
        "TETHER_TRACE": "otlp",
        "TETHER_OTLP_ENDPOINT": receiver.url,
        "OTEL_BSP_SCHEDULE_DELAY": "20",
    }
    n = 10
    run_id = t.start("steps", {"n": n, "pause": 0.3})
    steps_on_wire = lambda: [s for s in receiver.spans if s.name.startswith("step ")]  # noqa: E731
    # killed once its first spans have left: spans reach the exporter about once a second
    kill_worker_when(tmp_path / ".tether", lambda: len(steps_on_wire()) >= 1, env)
    committed = [e.name for e in t.journal(run_id)]
    from_first = {s.name.removeprefix("step ") for s in steps_on_wire()}
    assert t.status(run_id).status is RunStatus.RUNNING  # its lease is still on the dead worker
    run_worker_until(
        tmp_path / ".tether", lambda: t.status(run_id).status is RunStatus.COMPLETED, env
    )
    spans = receiver.spans
    assert {s.trace_id for s in spans} == {trace_id_for(run_id)}
    assert len({s.span_id for s in spans}) == len(spans)  # no span twice at the wire
    names = Counter(s.name.removeprefix("step ") for s in spans)
    assert names["run steps"] == 1 and all(c == 1 for c in names.values()), names
    order = [f"step {i}" for i in range(n)]
    assert from_first and from_first <= set(committed)
    for name in order:
        if name not in committed:
            assert names[name] == 1, name  # every step finished after the crash: one span
    lost = [name for name in committed if names[name] == 0]
    # what was lost was committed after the last span the killed worker sent
    last_sent = max(order.index(name) for name in from_first)
    assert all(order.index(name) > last_sent for name in lost), (lost, from_first)


@pytest.mark.slow
def test_kill_minus_9_after_a_park_sent_the_spans_gives_exactly_one_per_finished_entry(
    make_tether: Callable[..., Tether], tmp_path: Path, receiver: OtlpReceiver
) -> None:
    """The exact count: the killed worker had sent its steps' spans when its run parked, then
    died in the long step after the nap. The nap's completion was journaled while the run was
    parked and the dead worker never committed after it, so its span was still held: the
    worker that resumes emits it with its own first commit. Each finished entry then has
    exactly one span at the wire: none lost, none sent by both workers."""
    t = make_tether("sqlite", workflows=["tests.runtime.flows", "tests.trace.flows"])
    env = {
        "TETHER_TRACE": "otlp",
        "TETHER_OTLP_ENDPOINT": receiver.url,
        "OTEL_BSP_SCHEDULE_DELAY": "20",
        "TETHER_WORKFLOWS": '["tests.runtime.flows", "tests.trace.flows"]',
    }
    marker = tmp_path / "long-started"
    run_id = t.start("nap_then_long", {"marker": str(marker)})
    sent_before_park = lambda: sum(s.name.startswith("step ") for s in receiver.spans) == 3  # noqa: E731
    kill_worker_when(tmp_path / ".tether", lambda: marker.exists() and sent_before_park(), env)
    assert [e.name for e in t.journal(run_id)] == ["step 0", "step 1", "step 2", "nap"]
    run_worker_until(
        tmp_path / ".tether", lambda: t.status(run_id).status is RunStatus.COMPLETED, env
    )
    assert marker.read_text() == "started\n" * 2  # the long step was interrupted, and ran again

    spans = receiver.spans
    assert {s.trace_id for s in spans} == {trace_id_for(run_id)}
    finished = [f"{e.kind} {e.name}" for e in t.journal(run_id)]
    assert Counter(s.name for s in spans) == Counter([*finished, "run nap_then_long"])
    assert len(finished) == 6


@pytest.mark.slow
def test_kill_minus_9_after_a_gather_and_resume_sends_its_span_and_its_branches_once(
    make_tether: Callable[..., Tether], tmp_path: Path, receiver: OtlpReceiver
) -> None:
    """The worker that resumes replays the whole gather from the journal: neither the gather
    nor any branch gets a second span at the wire."""
    t = make_tether("sqlite", workflows=["tests.runtime.flows", "tests.trace.flows"])
    env = {
        "TETHER_TRACE": "otlp",
        "TETHER_OTLP_ENDPOINT": receiver.url,
        "OTEL_BSP_SCHEDULE_DELAY": "20",
        "TETHER_WORKFLOWS": '["tests.runtime.flows", "tests.trace.flows"]',
    }
    marker = tmp_path / "long-started"
    run_id = t.start("gather_then_long", {"marker": str(marker), "seconds": 2.0})
    gathered = lambda: any(s.name == "gather" for s in receiver.spans)  # noqa: E731
    kill_worker_when(tmp_path / ".tether", lambda: marker.exists() and gathered(), env)
    run_worker_until(
        tmp_path / ".tether", lambda: t.status(run_id).status is RunStatus.COMPLETED, env
    )
    assert marker.read_text() == "started\n" * 2  # killed in the long step, which ran again
    spans = receiver.spans
    assert {s.trace_id for s in spans} == {trace_id_for(run_id)}
    names = Counter(s.name for s in spans)
    assert names == Counter(["run gather_then_long", "gather", "step long"]
                            + [f"step branch {i}" for i in range(4)])  # fmt: skip
    gather = next(s for s in spans if s.name == "gather")
    assert {s.parent_span_id for s in spans if "branch" in s.name} == {gather.span_id}


def test_a_down_collector_neither_fails_nor_blocks_a_run(
    make_tether: Callable[..., Tether],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
    caplog.set_level(logging.WARNING)
    traced = make_tether("sqlite", trace="otlp", otlp_endpoint=f"http://127.0.0.1:{port}")
    untraced = make_tether("sqlite", trace="none")
    took = {}
    for label, t in (("untraced", untraced), ("traced", traced)):
        started = time.monotonic()
        run = t.run(t.start("steps", {"n": 20}))
        took[label] = time.monotonic() - started
        assert run.status is RunStatus.COMPLETED
    assert took["traced"] < took["untraced"] + 0.5, took
    traced.sink.close()
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warning.startswith("dropped 21 spans") and "last error:" in warning, warning


@pytest.mark.slow
def test_a_worker_whose_collector_is_down_keeps_a_bounded_buffer_and_logs_the_drop_count(
    make_tether: Callable[..., Tether], tmp_path: Path
) -> None:
    """A real worker process exporting to a closed port: its run completes; its outbox keeps
    the newest 8 spans (OTEL_BSP_MAX_QUEUE_SIZE) and drops the rest; when a collector answers
    on that port, the 8 arrive and the worker log has one warning carrying the count."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = make_tether("sqlite")
    env = {
        "TETHER_TRACE": "otlp",
        "TETHER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
        "OTEL_BSP_SCHEDULE_DELAY": "20",
        "OTEL_BSP_MAX_QUEUE_SIZE": "8",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "1",
    }
    run_id = t.start("steps", {"n": 20})
    worker = start_worker(tmp_path / ".tether", env)
    try:
        wait_for(lambda: t.status(run_id).status is RunStatus.COMPLETED)
        back = OtlpReceiver(port=port)  # the collector comes back, on the same port
        try:
            back.wait_for(lambda spans: len(spans) >= 8, timeout=40)  # the outbox's backoff
            time.sleep(0.5)  # anything more would arrive now
        finally:
            back.close()
    finally:
        worker.terminate()
        _, log = worker.communicate(timeout=15)
    names = [s.name for s in back.spans]
    assert names == [f"step step {i}" for i in range(13, 20)] + ["run steps"]  # the newest 8
    warnings = [line for line in log.decode().splitlines() if "dropped" in line]
    assert len(warnings) == 1 and "dropped 13 spans bound for" in warnings[0], log.decode()


def test_settings_name_phoenix_and_langfuse_endpoints() -> None:
    s = Settings(phoenix_endpoint="http://phoenix:6006", langfuse_host="https://lf.example")
    assert (s.phoenix_endpoint, s.langfuse_host) == ("http://phoenix:6006", "https://lf.example")
