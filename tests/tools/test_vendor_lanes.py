"""The e2b and daytona lanes: each vendor's unpatched SDK talking to a local server that speaks
its API and really runs the tool (tests/fakes), asserting what arrives; plus live tests that
run only when the vendor's API key is set."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes import daytona_server, e2b_server
from tests.fakes.daytona_server import DaytonaServer
from tests.fakes.e2b_server import E2BServer
from tests.tools import sample_tools as t
from tether.errors import ConfigurationError, ToolFailed, UnsafeReplayError
from tether.foundation.blobs.files import FileBlobStore
from tether.foundation.tools.backends._remote import CHILD_PATH, child_source, command
from tether.foundation.tools.backends.daytona import DaytonaLanes
from tether.foundation.tools.backends.e2b import E2BLanes
from tether.foundation.tools.contract import LaneBackend, PersistenceClass, ToolDef, ToolInvocation
from tether.foundation.tools.memory import MemoryToolResults
from tether.foundation.tools.runner import ToolRunner
from tether.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def runner(lanes: LaneBackend, tmp_path: Path) -> ToolRunner:
    return ToolRunner(MemoryToolResults(), lanes, FileBlobStore(tmp_path / "blobs"))


def call(tool: ToolDef, step: str = "1", run: str = "run-1", **args: object) -> ToolInvocation:
    return ToolInvocation(run_id=run, step_id=step, attempt=1, tool=tool, args=dict(args))


@pytest.fixture
def e2b(monkeypatch: pytest.MonkeyPatch) -> Iterator[E2BServer]:
    """A local server speaking E2B's API and its sandboxes' envd; the SDK is pointed at it by
    the variables it documents."""
    server = E2BServer()
    monkeypatch.setenv("E2B_API_KEY", e2b_server.KEY)
    monkeypatch.setenv("E2B_API_URL", server.url)
    monkeypatch.setenv("E2B_SANDBOX_URL", server.url)
    yield server
    server.close()


async def test_e2b_runs_each_call_in_a_fresh_sandbox_and_kills_it(
    tmp_path: Path, e2b: E2BServer
) -> None:
    lanes = E2BLanes.from_settings(Settings(data_dir=tmp_path, e2b_template="tether-tools"))
    r = runner(lanes, tmp_path)
    assert (await r.call(call(t.add, a=1, b=2))).value == 3
    assert (await r.call(call(t.can_connect_with_network, "2", host="h", port=1))).value is False

    one_call = [
        ("POST", "/v2/sandboxes"),
        ("POST", "/files"),  # child.py
        ("POST", "/files"),  # the request
        ("POST", "/process.Process/Start"),
        ("DELETE", "/sandboxes/{id}"),
    ]
    assert e2b.requests() == one_call + one_call
    assert [b["killed"] for b in e2b.sandboxes.values()] == [True, True]
    created = [c["body"] for c in e2b.calls if c["path"] == "/v2/sandboxes"]
    assert [c["allow_internet_access"] for c in created] == [False, True]
    assert created[0]["templateID"] == "tether-tools"
    assert created[0]["metadata"] == {"tether_run": "run-1", "tether_step": "1"}
    assert created[0]["timeout"] == int(t.add.timeout) + 60  # the tool's, and time to start
    control = [c for c in e2b.calls if c["sandbox"] is None]
    assert {c["credential"] for c in control} == {e2b_server.KEY}
    first = [c for c in e2b.calls if c["sandbox"] == "e2b1"]
    assert {c["credential"] for c in first} == {e2b.sandboxes["e2b1"]["token"]}
    child, request, start = first
    assert child["query"] == {"path": CHILD_PATH} and child["body"] == {CHILD_PATH: child_source()}
    request_file = request["query"]["path"]
    assert json.loads(request["body"][request_file])["args"] == {"a": 1, "b": 2}
    (started,) = start["body"]
    assert started["process"] == {"cmd": "/bin/bash", "args": ["-l", "-c", command(request_file)]}


async def test_e2b_reports_tool_errors_and_timeouts(tmp_path: Path, e2b: E2BServer) -> None:
    r = runner(E2BLanes.from_settings(Settings(data_dir=tmp_path)), tmp_path)
    outbox = tmp_path / "outbox"
    with pytest.raises(ToolFailed, match="smtp said no"):
        await r.call(call(t.send_then_fail, outbox=str(outbox)))
    with pytest.raises(ToolFailed, match="wall timeout"):
        await r.call(call(t.sleep_forever, "2"))
    with pytest.raises(UnsafeReplayError, match="wall timeout"):
        await r.call(call(t.send_slowly, "3", outbox=str(outbox)))
    assert [b["killed"] for b in e2b.sandboxes.values()] == [True, True, True]


async def test_e2b_refusing_the_key_is_a_configuration_error(
    tmp_path: Path, e2b: E2BServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("E2B_API_KEY", "e2b_wrong_key")
    r = runner(E2BLanes.from_settings(Settings(data_dir=tmp_path)), tmp_path)
    with pytest.raises(ConfigurationError, match="E2B refused the API key"):
        await r.call(call(t.add, a=1))
    assert e2b.requests() == [("POST", "/v2/sandboxes")] and not e2b.sandboxes
    assert e2b.calls[0]["credential"] == "e2b_wrong_key"


def test_e2b_has_no_persistent_lanes_and_needs_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigurationError, match="ephemeral tools only"):
        E2BLanes("key").lane(PersistenceClass.PERSISTENT_SESSION)
    monkeypatch.delenv("E2B_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="E2B_API_KEY"):
        E2BLanes.from_settings(Settings(data_dir=tmp_path))


@pytest.fixture
def daytona(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DaytonaServer]:
    """A local server speaking Daytona's API; the SDK is pointed at it as a user would."""
    server = DaytonaServer()
    monkeypatch.setenv("DAYTONA_API_KEY", daytona_server.KEY)
    monkeypatch.setenv("DAYTONA_API_URL", server.url)
    yield server
    server.close()


async def test_daytona_session_sandbox_is_stopped_on_park_and_deleted_at_run_end(
    tmp_path: Path, daytona: DaytonaServer
) -> None:
    r = runner(DaytonaLanes.from_settings(Settings(data_dir=tmp_path)), tmp_path)
    first = (await r.call(call(t.session_count, note="a"))).value
    await r.run_parked("run-1")
    box = daytona.named("tether-run-run-1")
    assert box["state"] == "stopped"
    second = (await r.call(call(t.session_count, "2", note="b"))).value
    assert (first["on_disk"], second["on_disk"]) == (1, 2)
    await r.run_ended("run-1")
    assert box["state"] == "destroyed"

    assert {c["auth"] for c in daytona.calls} == {f"Bearer {daytona_server.KEY}"}
    created = next(c["body"] for c in daytona.calls if c["path"] == "/sandbox")
    assert created["name"] == "tether-run-run-1" and created["networkBlockAll"] is True
    assert created["labels"]["tether_run"] == "run-1"
    one_call = [
        ("POST", "/toolbox/{id}/files/bulk-upload"),  # child.py
        ("POST", "/toolbox/{id}/files/bulk-upload"),  # the request
        ("POST", "/toolbox/{id}/process/execute"),
    ]
    assert daytona.requests() == [
        ("GET", "/sandbox/tether-run-run-1"), ("POST", "/sandbox"), *one_call,
        ("GET", "/sandbox/tether-run-run-1"), ("POST", "/sandbox/{id}/stop"),
        ("GET", "/sandbox/{id}"),  # the SDK reads the state it stopped in
        ("GET", "/sandbox/tether-run-run-1"), ("POST", "/sandbox/{id}/start"), *one_call,
        ("GET", "/sandbox/tether-run-run-1"), ("DELETE", "/sandbox/{id}"),
    ]  # fmt: skip
    uploads = [c["body"] for c in daytona.calls if c["path"].endswith("/bulk-upload")]
    assert list(uploads[0]) == [CHILD_PATH] and uploads[0][CHILD_PATH] == child_source()
    (request_file,) = uploads[1]
    assert json.loads(uploads[1][request_file])["args"] == {"note": "a"}
    execute = next(c["body"] for c in daytona.calls if c["path"].endswith("/execute"))
    assert execute == {"command": command(request_file), "timeout": t.session_count.timeout}


async def test_daytona_workspace_sandbox_outlives_runs(
    tmp_path: Path, daytona: DaytonaServer
) -> None:
    r = runner(DaytonaLanes.from_settings(Settings(data_dir=tmp_path)), tmp_path)
    await r.call(call(t.workspace_append, run="run-1", note="first"))
    await r.run_ended("run-1")
    seen = (await r.call(call(t.workspace_append, run="run-2", note="second"))).value
    assert seen == ["first", "second"]
    box = daytona.named("tether-ws-shared-notes")
    assert box["state"] == "started" and box["labels"]["tether_workspace"] == "shared-notes"
    assert [p for m, p in daytona.requests() if m == "POST" and p == "/sandbox"] == ["/sandbox"]


async def test_daytona_refusing_the_key_is_a_configuration_error(
    tmp_path: Path, daytona: DaytonaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAYTONA_API_KEY", "wrong-key")
    r = runner(DaytonaLanes.from_settings(Settings(data_dir=tmp_path)), tmp_path)
    with pytest.raises(ConfigurationError, match="Daytona refused the API key"):
        await r.call(call(t.session_count, note="a"))
    assert daytona.requests() == [("GET", "/sandbox/tether-run-run-1")]
    assert daytona.calls[0]["auth"] == "Bearer wrong-key" and not daytona.sandboxes


def test_daytona_has_no_ephemeral_lane_and_needs_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAYTONA_API_KEY", "key")
    with pytest.raises(ConfigurationError, match="persistent tools only"):
        DaytonaLanes.from_settings(Settings(data_dir=tmp_path)).lane(PersistenceClass.EPHEMERAL)
    monkeypatch.delenv("DAYTONA_API_KEY")
    with pytest.raises(ConfigurationError, match="DAYTONA_API_KEY"):
        DaytonaLanes.from_settings(Settings(data_dir=tmp_path))


def _live(var: str) -> None:
    if not os.environ.get(var):
        reason = f"{var} is not set: live test against the real service skipped"
        print(reason)
        pytest.skip(reason)


async def test_e2b_live_sandbox_answers_a_call(tmp_path: Path) -> None:
    _live("E2B_API_KEY")
    r = runner(E2BLanes.from_settings(Settings(data_dir=tmp_path)), tmp_path)
    assert (await r.call(call(t.add, a=1, b=2))).value == 3


async def test_daytona_live_session_answers_a_call(tmp_path: Path) -> None:
    _live("DAYTONA_API_KEY")
    r = runner(DaytonaLanes.from_settings(Settings(data_dir=tmp_path)), tmp_path)
    try:
        assert (await r.call(call(t.session_count, note="live"))).value["on_disk"] == 1
    finally:
        await r.run_ended("run-1")
        await r.close()
