"""`tether trace load DUMP --to ...`: a JSONL dump replayed into an OTLP backend arrives with
its original ids and times; malformed lines are skipped by line number and counted; a folder
of dumps loads whole; a dump larger than the exporter's buffer is not cut short."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fakes.otlp_receiver import OtlpReceiver
from tether import RunStatus, Tether
from tether.foundation.trace.backends.jsonl import JsonlTraceSink
from tether.foundation.trace.contract import Span, span_id_for, span_json, trace_id_for

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    r = OtlpReceiver()
    yield r
    r.close()


def tether_cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tether.cli", *args],
        env={**os.environ, "PYTHONPATH": str(ROOT), "TETHER_DATA_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _span(i: int) -> Span:
    return Span(
        trace_id=trace_id_for("offline"),
        span_id=span_id_for("offline", str(i)),
        parent_span_id=span_id_for("offline", "run"),
        name=f"step s{i}",
        start_ns=1_600_000_000_000_000_000 + i,
        end_ns=1_600_000_000_000_001_000 + i,
    )


def test_a_dump_written_offline_loads_with_its_ids_and_times(
    make_tether: Callable[..., Tether], tmp_path: Path, receiver: OtlpReceiver
) -> None:
    t = make_tether("sqlite", trace="jsonl")  # the collector is nowhere: spans go to the dump
    run_id = t.start("steps", {"n": 3})
    assert t.run(run_id).status is RunStatus.COMPLETED
    t.sink.close()
    dump = tmp_path / ".tether" / "traces.jsonl"
    written = JsonlTraceSink(dump).read()
    lines = dump.read_text().splitlines()
    lines.insert(2, '{"trace_id": "not a span"')
    lines.insert(4, json.dumps({**json.loads(lines[0]), "span_id": "xyz"}))
    dump.write_text("\n".join(lines) + "\n")

    done = tether_cli(
        tmp_path,
        "trace",
        "load",
        str(dump),
        "--to",
        "phoenix",
        TETHER_PHOENIX_ENDPOINT=receiver.url,
    )
    assert done.returncode == 0, done.stderr
    assert "loaded 4 spans into phoenix, skipped 2 malformed lines" in done.stdout
    assert f"{dump}:3:" in done.stderr and f"{dump}:5: span_id 'xyz'" in done.stderr
    got = {s.span_id: s for s in receiver.spans}
    assert set(got) == {s.span_id for s in written}
    for s in written:
        w = got[s.span_id]
        assert (w.trace_id, w.parent_span_id, w.name) == (s.trace_id, s.parent_span_id, s.name)
        assert (w.start_ns, w.end_ns) == (s.start_ns, s.end_ns)
        assert w.trace_id == trace_id_for(run_id)


def test_a_folder_of_dumps_larger_than_the_buffer_loads_whole(tmp_path: Path) -> None:
    receiver = OtlpReceiver(
        "/api/public/otel/v1/traces", auth="Basic " + base64.b64encode(b"pk:sk").decode()
    )
    try:
        folder = tmp_path / "dumps"
        (folder / "w2").mkdir(parents=True)
        (folder / "w1.jsonl").write_bytes(
            b"".join(span_json(_span(i)) + b"\n" for i in range(3000))
        )
        (folder / "w2" / "traces.jsonl").write_bytes(span_json(_span(3000)) + b"\n\n")
        done = tether_cli(
            tmp_path,
            "trace",
            "load",
            str(folder),
            "--to",
            "langfuse",
            TETHER_LANGFUSE_HOST=receiver.url,
            LANGFUSE_PUBLIC_KEY="pk",
            LANGFUSE_SECRET_KEY="sk",
            OTEL_BSP_MAX_QUEUE_SIZE="1024",
        )
        assert done.returncode == 0, done.stderr
        assert "loaded 3001 spans into langfuse, skipped 0 malformed lines" in done.stdout
        assert len({s.span_id for s in receiver.spans}) == 3001
    finally:
        receiver.close()


def test_loading_into_a_down_collector_says_so_and_exits_1(tmp_path: Path) -> None:
    dump = tmp_path / "traces.jsonl"
    dump.write_bytes(span_json(_span(1)) + b"\n")
    done = tether_cli(
        tmp_path,
        "trace",
        "load",
        str(dump),
        "--to",
        "otlp",
        TETHER_OTLP_ENDPOINT="http://127.0.0.1:9",
        OTEL_EXPORTER_OTLP_TIMEOUT="1",
    )
    assert done.returncode == 1
    assert "did not take every span" in done.stderr and "dropped 1 spans" in done.stderr


def test_a_missing_dump_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = tether_cli(tmp_path, "trace", "load", str(tmp_path / "nope"), "--to", "otlp")
    assert done.returncode == 2 and "neither a file nor a folder" in done.stderr
