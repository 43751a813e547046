"""The tensorlake lanes through the unpatched `tensorlake` SDK, against a local server that
speaks Tensorlake's sandbox API and asserts what arrives (method, path, key, body); a live test
runs only when TENSORLAKE_API_KEY is set."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.tensorlake_server import KEY, TensorlakeServer
from tests.tools import sample_tools as t
from tether.errors import ConfigurationError, ToolFailed
from tether.foundation.blobs.files import FileBlobStore
from tether.foundation.tools.backends.tensorlake import TensorlakeLanes
from tether.foundation.tools.contract import ToolDef, ToolInvocation
from tether.foundation.tools.memory import MemoryToolResults
from tether.foundation.tools.runner import ToolRunner
from tether.settings import Settings

pytestmark = pytest.mark.anyio
CREATE = ("POST", "/v1/namespaces/default/sandboxes")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def server() -> Iterator[TensorlakeServer]:
    made = TensorlakeServer()
    yield made
    made.close()


def runner(
    server: TensorlakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str = KEY
) -> ToolRunner:
    """Built as configuration builds it: the key and URL from Tensorlake's own variables."""
    monkeypatch.setenv("TENSORLAKE_API_KEY", key)
    monkeypatch.setenv("TENSORLAKE_API_URL", server.url)
    lanes = TensorlakeLanes.from_settings(Settings(data_dir=tmp_path, tensorlake_image="tools"))  # type: ignore[call-arg]
    return ToolRunner(MemoryToolResults(), lanes, FileBlobStore(tmp_path / "blobs"))


def call(tool: ToolDef, step: str = "1", run: str = "run-1", **args: object) -> ToolInvocation:
    return ToolInvocation(run_id=run, step_id=step, attempt=1, tool=tool, args=dict(args))


async def test_an_ephemeral_call_creates_a_sandbox_runs_once_and_terminates_it(
    server: TensorlakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = runner(server, tmp_path, monkeypatch)
    assert (await r.call(call(t.add, a=1, b=2))).value == 3
    assert server.requests() == [
        CREATE,
        ("GET", "/v1/namespaces/default/sandboxes/{id}"),
        ("PUT", "/api/v1/files"),
        ("PUT", "/api/v1/files"),
        ("POST", "/api/v1/processes/run"),
        ("DELETE", "/v1/namespaces/default/sandboxes/{id}"),
    ]
    create, _, child, req, run, _ = server.calls
    assert {c["key"] for c in server.calls} == {f"Bearer {KEY}"}
    assert create["body"]["image"] == "tools" and create["body"]["timeout_secs"] == 60 + 60
    assert create["body"]["network"]["allow_internet_access"] is False
    assert "name" not in create["body"]
    assert child["query"] == {"path": "/tmp/tether_child.py"} and child["host"] == "sb-1.local"
    assert json.loads(req["body"])["args"] == {"a": 1, "b": 2}
    assert run["body"]["command"] == "sh" and run["body"]["timeout"] == 60
    assert run["body"]["args"][1].startswith("python3 -P /tmp/tether_child.py once < ")
    assert server.sandboxes["sb-1"]["status"] == "terminated"


async def test_a_session_sandbox_is_suspended_on_park_and_resumed_by_name(
    server: TensorlakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = runner(server, tmp_path, monkeypatch)
    first = (await r.call(call(t.session_count, note="a"))).value
    assert server.calls[1]["body"]["name"] == "tether-run-run-1"
    await r.run_parked("run-1")
    assert server.sandboxes["sb-1"]["status"] == "suspended"
    server.calls.clear()
    second = (await r.call(call(t.session_count, "2", note="b"))).value
    assert (first["on_disk"], second["on_disk"]) == (1, 2)
    assert server.requests()[:2] == [
        ("GET", "/v1/namespaces/default/sandboxes/tether-run-run-1"),
        ("POST", "/v1/namespaces/default/sandboxes/tether-run-run-1/resume"),
    ]
    await r.run_ended("run-1")
    assert server.requests()[-1] == ("DELETE", "/v1/namespaces/default/sandboxes/tether-run-run-1")
    assert list(server.sandboxes) == ["sb-1"] and server.sandboxes["sb-1"]["status"] == "terminated"


async def test_a_workspace_sandbox_outlives_runs(
    server: TensorlakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = runner(server, tmp_path, monkeypatch)
    await r.call(call(t.workspace_append, run="run-1", note="first"))
    await r.run_ended("run-1")
    seen = (await r.call(call(t.workspace_append, run="run-2", note="second"))).value
    assert seen == ["first", "second"]
    assert server.sandboxes["sb-1"]["name"] == "tether-ws-shared-notes"


async def test_tool_errors_and_wall_timeouts_are_reported(
    server: TensorlakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = runner(server, tmp_path, monkeypatch)
    with pytest.raises(ToolFailed, match="smtp said no"):
        await r.call(call(t.send_then_fail, outbox=str(tmp_path / "outbox")))
    with pytest.raises(ToolFailed, match="wall timeout"):
        await r.call(call(t.sleep_forever, "2"))


async def test_a_refused_key_is_a_configuration_error(
    server: TensorlakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigurationError, match="Tensorlake refused the API key"):
        await runner(server, tmp_path, monkeypatch, key="wrong").call(call(t.add, a=1))
    assert server.calls[0]["key"] == "Bearer wrong"


def test_the_lanes_need_a_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TENSORLAKE_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="TENSORLAKE_API_KEY"):
        TensorlakeLanes.from_settings(Settings(data_dir=tmp_path))


async def test_tensorlake_live_session_answers_a_call(tmp_path: Path) -> None:
    if not os.environ.get("TENSORLAKE_API_KEY"):
        reason = "TENSORLAKE_API_KEY is not set: live test against the real service skipped"
        print(reason)
        pytest.skip(reason)
    r = ToolRunner(MemoryToolResults(), TensorlakeLanes.from_settings(
        Settings(data_dir=tmp_path)), FileBlobStore(tmp_path / "blobs"))  # fmt: skip
    try:
        assert (await r.call(call(t.session_count, note="live"))).value["on_disk"] == 1
    finally:
        await r.run_ended("run-1")
        await r.close()
