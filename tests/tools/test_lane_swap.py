"""Swap test #1: the same persistent-session tool, in the same workflow, runs on daytona, then
opencomputer, then tensorlake, by configuration only (`TETHER_TOOLS__LANES__PERSISTENT_SESSION`),
keeping its session state across two calls and across a park on each: each vendor's unpatched
SDK talking to a local server that speaks its API (tests/fakes)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import daytona_server, opencomputer_server, tensorlake_server
from tests.fakes.daytona_server import DaytonaServer
from tests.fakes.opencomputer_server import OpenComputerServer
from tests.fakes.tensorlake_server import TensorlakeServer
from tether import RunStatus, Tether
from tether.settings import Settings


@pytest.fixture
def server() -> Iterator[OpenComputerServer]:
    made = OpenComputerServer()
    yield made
    made.close()


def run_swap_flow(tmp_path: Path) -> Any:
    """The session tool twice, a park on an event, once more; what each call saw."""
    t_ = Tether(Settings(data_dir=tmp_path / ".tether", workflows=["tests.tools.swap_flow"],
                         poll_interval=0.02, trace="none"))  # fmt: skip
    try:
        run_id = t_.start("session_swap", {"ticket": "T-1"})
        stop = threading.Event()
        parked = t_.run(run_id, stop=stop, on_wait=lambda _run: stop.set())
        assert parked.status is RunStatus.WAITING
        t_.send_event("swap.resume", {"ticket": "T-1"})
        done = t_.run(run_id)
        assert done.status is RunStatus.COMPLETED, done.error
        return t_.output(done)
    finally:
        t_.close()


def test_swap_1_a_session_tool_moves_from_daytona_to_opencomputer_and_tensorlake_by_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: OpenComputerServer
) -> None:
    """And on to tensorlake: the third session backend, by the same one setting."""
    monkeypatch.setenv("TETHER_CONFIG_FILE", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")
    monkeypatch.setenv("OPENCOMPUTER_API_KEY", opencomputer_server.KEY)
    monkeypatch.setenv("OPENCOMPUTER_API_URL", server.url)
    daytona = DaytonaServer()
    try:
        monkeypatch.setenv("DAYTONA_API_KEY", daytona_server.KEY)
        monkeypatch.setenv("DAYTONA_API_URL", daytona.url)
        monkeypatch.setenv("TETHER_TOOLS__LANES__PERSISTENT_SESSION", "daytona")
        on_daytona = run_swap_flow(tmp_path / "one")
    finally:
        daytona.close()
    monkeypatch.setenv("TETHER_TOOLS__LANES__PERSISTENT_SESSION", "opencomputer")
    on_opencomputer = run_swap_flow(tmp_path / "two")
    tensorlake = TensorlakeServer()
    try:
        monkeypatch.setenv("TENSORLAKE_API_KEY", tensorlake_server.KEY)
        monkeypatch.setenv("TENSORLAKE_API_URL", tensorlake.url)
        monkeypatch.setenv("TETHER_TOOLS__LANES__PERSISTENT_SESSION", "tensorlake")
        on_tensorlake = run_swap_flow(tmp_path / "three")
        (name,) = {b["name"] for b in tensorlake.sandboxes.values()}
    finally:
        tensorlake.close()

    for seen in (on_daytona, on_opencomputer, on_tensorlake):  # the disk across calls and a park
        assert [s["on_disk"] for s in seen["seen"]] == [1, 2, 3]
    (box,) = daytona.sandboxes.values()
    lifecycle = [p for m, p in daytona.requests() if p.startswith("/sandbox/{id}")]
    assert box["name"].startswith("tether-run-") and box["state"] == "destroyed"
    assert [p for p in lifecycle if p != "/sandbox/{id}"] == ["/sandbox/{id}/stop",
                                                              "/sandbox/{id}/start"]  # fmt: skip
    assert daytona.requests()[-1] == ("DELETE", "/sandbox/{id}")
    assert ("POST", "/api/sandboxes/{id}/hibernate") in server.requests()
    assert ("POST", "/api/sandboxes/{id}/wake") in server.requests()
    assert server.requests()[-1] == ("DELETE", "/api/sandboxes/{id}")
    assert [b["status"] for b in server.sandboxes.values()] == ["killed"]
    named = f"/v1/namespaces/default/sandboxes/{name}/"
    lifecycle = [p.removeprefix(named) for m, p in tensorlake.requests()
                 if m == "POST" and p.startswith(named)]  # fmt: skip
    assert name.startswith("tether-run-") and lifecycle == ["suspend", "resume"]
    assert [b["status"] for b in tensorlake.sandboxes.values()] == ["terminated"]
