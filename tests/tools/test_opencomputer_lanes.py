"""The opencomputer lanes through the unpatched `opencomputer-sdk`, against a local server that
speaks OpenComputer's API and asserts what arrives (method, path, key, body); a live test runs
only when OPENCOMPUTER_API_KEY is set."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.opencomputer_server import KEY, OpenComputerServer
from tests.tools import sample_tools as t
from tether.errors import ConfigurationError, ToolFailed
from tether.foundation.blobs.files import FileBlobStore
from tether.foundation.tools.backends.opencomputer import OpenComputerLanes
from tether.foundation.tools.contract import ToolDef, ToolInvocation
from tether.foundation.tools.memory import MemoryToolResults
from tether.foundation.tools.runner import ToolRunner
from tether.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def server() -> Iterator[OpenComputerServer]:
    made = OpenComputerServer()
    yield made
    made.close()


def runner(server: OpenComputerServer, tmp_path: Path, key: str = KEY) -> ToolRunner:
    lanes = OpenComputerLanes(key, tmp_path / "ids", api_url=server.url, template="tether-tools")
    return ToolRunner(MemoryToolResults(), lanes, FileBlobStore(tmp_path / "blobs"))


def call(tool: ToolDef, step: str = "1", run: str = "run-1", **args: object) -> ToolInvocation:
    return ToolInvocation(run_id=run, step_id=step, attempt=1, tool=tool, args=dict(args))


async def test_an_ephemeral_call_creates_a_sandbox_runs_once_and_kills_it(
    server: OpenComputerServer, tmp_path: Path
) -> None:
    assert (await runner(server, tmp_path).call(call(t.add, a=1, b=2))).value == 3
    assert server.requests() == [
        ("POST", "/api/sandboxes"),
        ("PUT", "/api/sandboxes/{id}/files"),
        ("PUT", "/api/sandboxes/{id}/files"),
        ("POST", "/api/sandboxes/{id}/exec/run"),
        ("DELETE", "/api/sandboxes/{id}"),
    ]
    create, child, req, run, _ = server.calls
    assert {c["key"] for c in server.calls} == {KEY}
    assert create["body"] == {
        "templateID": "tether-tools", "timeout": 0,
        "metadata": {"tether_run": "run-1", "tether_step": "1"},
    }  # fmt: skip
    assert child["query"] == {"path": "/tmp/tether_child.py"} and "def main" in child["body"]
    assert json.loads(req["body"])["args"] == {"a": 1, "b": 2}
    assert req["query"]["path"].startswith("/tmp/tether-request-")
    assert run["body"]["cmd"] == "sh" and run["body"]["timeout"] == 60
    assert run["body"]["args"][1].startswith("python3 -P /tmp/tether_child.py once < ")
    assert server.sandboxes["sb-1"]["status"] == "killed"


async def test_a_session_sandbox_hibernates_on_park_and_wakes_with_its_disk(
    server: OpenComputerServer, tmp_path: Path
) -> None:
    r = runner(server, tmp_path)
    first = (await r.call(call(t.session_count, note="a"))).value
    await r.run_parked("run-1")
    assert server.sandboxes["sb-1"]["status"] == "hibernated"
    server.calls.clear()
    second = (await r.call(call(t.session_count, "2", note="b"))).value
    assert (first["on_disk"], second["on_disk"]) == (1, 2)
    assert server.requests()[:2] == [("GET", "/api/sandboxes/{id}"),
                                     ("POST", "/api/sandboxes/{id}/wake")]  # fmt: skip
    await r.run_ended("run-1")
    assert server.requests()[-1] == ("DELETE", "/api/sandboxes/{id}")
    assert list(server.sandboxes) == ["sb-1"]  # one sandbox for the run, all along


async def test_a_workspace_sandbox_outlives_runs(
    server: OpenComputerServer, tmp_path: Path
) -> None:
    r = runner(server, tmp_path)
    await r.call(call(t.workspace_append, run="run-1", note="first"))
    await r.run_ended("run-1")
    seen = (await r.call(call(t.workspace_append, run="run-2", note="second"))).value
    assert seen == ["first", "second"]
    assert server.sandboxes["sb-1"]["metadata"] == {"tether_workspace": "shared-notes"}


async def test_tool_errors_and_wall_timeouts_are_reported(
    server: OpenComputerServer, tmp_path: Path
) -> None:
    r = runner(server, tmp_path)
    with pytest.raises(ToolFailed, match="smtp said no"):
        await r.call(call(t.send_then_fail, outbox=str(tmp_path / "outbox")))
    with pytest.raises(ToolFailed, match="wall timeout"):
        await r.call(call(t.sleep_forever, "2"))


async def test_a_refused_key_is_a_configuration_error(
    server: OpenComputerServer, tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError, match="OpenComputer refused the API key"):
        await runner(server, tmp_path, key="wrong").call(call(t.add, a=1))
    assert server.calls[0]["key"] == "wrong"


def test_the_lanes_need_a_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENCOMPUTER_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="OPENCOMPUTER_API_KEY"):
        OpenComputerLanes.from_settings(Settings(data_dir=tmp_path))


async def test_opencomputer_live_session_answers_a_call(tmp_path: Path) -> None:
    if not os.environ.get("OPENCOMPUTER_API_KEY"):
        reason = "OPENCOMPUTER_API_KEY is not set: live test against the real service skipped"
        print(reason)
        pytest.skip(reason)
    r = ToolRunner(MemoryToolResults(), OpenComputerLanes.from_settings(
        Settings(data_dir=tmp_path)), FileBlobStore(tmp_path / "blobs"))  # fmt: skip
    try:
        assert (await r.call(call(t.session_count, note="live"))).value["on_disk"] == 1
    finally:
        await r.run_ended("run-1")
