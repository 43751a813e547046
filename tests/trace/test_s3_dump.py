"""The `s3` dump against moto in server mode (a real HTTP S3 endpoint, reached by endpoint URL
as R2 is): a run's spans land as one object per run per flush with a manifest naming them, and
`tether trace load s3://...` replays them into an OTLP backend with their ids and times."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.otlp_receiver import OtlpReceiver
from tests.fakes.s3_server import AWS, moto_server
from tether import RunStatus, Settings, Tether
from tether.errors import ConfigurationError
from tether.foundation.trace.config import open_trace_sink
from tether.foundation.trace.fanout import FanoutTraceSink

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, request: Any) -> Any:
    import boto3

    for name, value in AWS.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    name = request.node.name.replace("_", "-")[:50].lower()
    client.create_bucket(Bucket=name)
    return client, name


def keys(client: Any, bucket: str, prefix: str) -> list[str]:
    found = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return sorted(o["Key"] for o in found)


def test_a_run_lands_as_one_object_per_run_per_flush_with_a_manifest(
    make_tether: Callable[..., Tether], s3_endpoint: str, bucket: Any
) -> None:
    client, name = bucket
    t = make_tether(
        "sqlite",
        trace="jsonl,s3",
        trace_s3_url=f"s3://{name}/dumps/prod",
        trace_s3_endpoint_url=s3_endpoint,
    )
    runs = [t.start("steps", {"n": 3}) for _ in range(2)]
    for run_id in runs:
        assert t.run(run_id).status is RunStatus.COMPLETED
    assert isinstance(t.sink, FanoutTraceSink)
    t.sink.close()
    manifests = keys(client, name, "dumps/prod/manifests/")
    assert manifests
    listed = [
        entry
        for key in manifests
        for entry in json.loads(client.get_object(Bucket=name, Key=key)["Body"].read())["objects"]
    ]
    assert {e["run_id"] for e in listed} == set(runs)
    assert sorted(e["key"] for e in listed) == keys(client, name, "dumps/prod/runs/")
    lines = [
        line
        for e in listed
        for line in client.get_object(Bucket=name, Key=e["key"])["Body"].read().splitlines()
    ]
    assert sum(e["spans"] for e in listed) == len(lines) == 8  # 2 runs x (3 steps + run)
    dumped = (t.settings.data_path / "traces.jsonl").read_bytes().splitlines()
    assert sorted(lines) == sorted(dumped)  # byte for byte the lines jsonl writes


def test_an_s3_dump_loads_into_an_otlp_backend_with_its_ids_and_times(
    make_tether: Callable[..., Tether], s3_endpoint: str, bucket: Any, tmp_path: Path
) -> None:
    client, name = bucket
    t = make_tether("sqlite", trace="memory")
    run_id = t.start("steps", {"n": 4})
    assert t.run(run_id).status is RunStatus.COMPLETED
    written = t.sink.spans  # type: ignore[attr-defined]
    settings = Settings(trace="s3", trace_s3_url=f"s3://{name}", trace_s3_endpoint_url=s3_endpoint)
    s3 = open_trace_sink(settings)
    for span in written:
        s3.emit(span)
    s3.close()
    client.put_object(Bucket=name, Key="runs/x/bad.jsonl", Body=b"{not json\n")
    client.put_object(
        Bucket=name,
        Key="manifests/z.json",
        Body=json.dumps({"objects": [{"key": "runs/x/bad.jsonl"}]}).encode(),
    )

    receiver = OtlpReceiver()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tether.cli", "trace", "load", f"s3://{name}", "--to", "otlp"],
            env={
                **os.environ,
                **AWS,
                "PYTHONPATH": str(ROOT),
                "TETHER_DATA_DIR": str(tmp_path),
                "TETHER_OTLP_ENDPOINT": receiver.url,
                "TETHER_TRACE_S3_ENDPOINT_URL": s3_endpoint,
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert "loaded 5 spans into otlp, skipped 1 malformed lines" in done.stdout
        assert f"s3://{name}/runs/x/bad.jsonl:1:" in done.stderr
        got = {
            (s.trace_id, s.span_id, s.parent_span_id, s.name, s.start_ns, s.end_ns)
            for s in receiver.spans
        }
        assert got == {
            (s.trace_id, s.span_id, s.parent_span_id, s.name, s.start_ns, s.end_ns) for s in written
        }
    finally:
        receiver.close()


def test_s3_without_a_url_says_what_to_set() -> None:
    with pytest.raises(ConfigurationError, match="TETHER_TRACE_S3_URL"):
        open_trace_sink(Settings(trace="s3"))
