"""Against a real Phoenix (its own virtualenv, started once per session): the research agent
shows as an agent loop (AGENT, LLM and TOOL spans under one trace, tokens on the LLM spans),
and a dump written while Phoenix was down, loaded later with `tether trace load`, appears in
Phoenix with its original ids and times."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from tests.trace.phoenix import Phoenix
from tether import RunStatus, Tether
from tether.foundation.trace.backends.jsonl import JsonlTraceSink
from tether.foundation.trace.contract import trace_id_for

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

TOPIC = {"topic": "durable background agents", "review_pause_seconds": 0}


def research(make_tether: Callable[..., Tether], **settings: object) -> tuple[Tether, str]:
    t = make_tether("sqlite", workflows=["workflows.research_report"], **settings)
    run_id = t.start("research_report", TOPIC)
    assert t.run(run_id).status is RunStatus.COMPLETED
    t.sink.close()
    return t, run_id


def test_the_research_agent_shows_in_phoenix_as_an_agent_loop(
    make_tether: Callable[..., Tether], phoenix: Phoenix
) -> None:
    project = f"agents-{uuid.uuid4().hex[:8]}"
    _, run_id = research(
        make_tether, trace="phoenix", phoenix_endpoint=phoenix.url, phoenix_project=project
    )
    spans = phoenix.wait_for_spans(project, trace_id_for(run_id), 16)
    kinds = Counter(s["span_kind"] for s in spans)
    assert kinds["AGENT"] == 1 and kinds["LLM"] >= 2 and kinds["TOOL"] >= 1, kinds
    (root,) = [s for s in spans if s["parent_id"] is None]
    assert root["name"] == "run research_report" and root["span_kind"] == "AGENT"
    (gather,) = [s for s in spans if s["name"] == "gather"]
    loop = {"model agent", "tool search_library"}  # each question's loop, in the gather
    for s in spans:
        if s is not root:
            want = gather if s["name"] in loop else root
            assert s["parent_id"] == want["context"]["span_id"], s["name"]
    llm = next(s for s in spans if s["span_kind"] == "LLM")
    assert llm["attributes"]["llm.token_count.prompt"] > 0
    assert llm["attributes"]["input.value"] and llm["attributes"]["output.value"]
    # the guards' verdicts on the call, as events of its span
    decided = {(e["name"], e["attributes"]["tether.guard.rule"]) for e in llm["events"]}
    assert {("policy allow", "default"), ("budget allow", "cost_cap")} <= decided


def test_a_dump_written_while_phoenix_was_down_loads_later_with_its_ids(
    make_tether: Callable[..., Tether],
    phoenix: Phoenix,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    project = f"offline-{uuid.uuid4().hex[:8]}"
    t, run_id = research(
        make_tether, trace="jsonl,phoenix", phoenix_endpoint=down, phoenix_project=project
    )
    dump = t.settings.data_path / "traces.jsonl"
    written = JsonlTraceSink(dump).read()
    assert phoenix.spans(project) == []  # Phoenix never saw it

    done = subprocess.run(
        [sys.executable, "-m", "tether.cli", "trace", "load", str(dump), "--to", "phoenix"],
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "TETHER_DATA_DIR": str(tmp_path / "loader"),
            "TETHER_PHOENIX_ENDPOINT": phoenix.url,
            "TETHER_PHOENIX_PROJECT": project,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"loaded {len(written)} spans into phoenix, skipped 0" in done.stdout
    got = phoenix.wait_for_spans(project, trace_id_for(run_id), len(written))
    by_id = {s["context"]["span_id"]: s for s in got}
    assert set(by_id) == {s.span_id for s in written}
    for s in written:
        p = by_id[s.span_id]
        assert (p["name"], p["parent_id"]) == (s.name, s.parent_span_id)
        started = datetime.fromisoformat(p["start_time"]).timestamp()
        assert abs(started - s.start_ns / 1e9) < 1e-3  # the original time, not the load's
