"""The local lane forks each one-shot call from a warm template: every call is still a
process of its own, a timeout still kills all it started, and a dead template is replaced."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.tools import sample_tools as t
from tether.errors import ToolFailed
from tether.foundation.blobs.files import FileBlobStore
from tether.foundation.tools.contract import ToolDef, ToolInvocation
from tether.foundation.tools.local import LocalLanes
from tether.foundation.tools.memory import MemoryToolResults
from tether.foundation.tools.runner import ToolRunner

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the template is Linux's"),
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def runner(tmp_path: Path) -> ToolRunner:
    lanes = LocalLanes(tmp_path / "data")
    return ToolRunner(MemoryToolResults(), lanes, FileBlobStore(tmp_path / "blobs"))


def call(tool: ToolDef, step: str, **args: object) -> ToolInvocation:
    return ToolInvocation(run_id="r", step_id=step, attempt=1, tool=tool, args=dict(args))


def gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":
            return True
        time.sleep(0.02)
    return False


async def test_every_call_is_a_fresh_process_with_fresh_module_state(runner: ToolRunner) -> None:
    seen = [(await runner.call(call(t.count_calls, str(i)))).value for i in range(3)]
    assert [s["calls"] for s in seen] == [1, 1, 1]  # the template's copy of the module is untouched
    assert len({s["pid"] for s in seen}) == 3
    assert len({s["parent"] for s in seen}) == 1 != os.getpid()  # forked by one template


async def test_a_timeout_kills_what_the_tool_started(runner: ToolRunner, tmp_path: Path) -> None:
    pidfile = tmp_path / "helper.pid"
    with pytest.raises(ToolFailed, match="wall timeout"):
        await runner.call(call(t.start_then_hang, "1", pidfile=str(pidfile)))
    assert gone(int(pidfile.read_text()))


async def test_a_dead_template_is_replaced_at_the_next_call(runner: ToolRunner) -> None:
    first = (await runner.call(call(t.count_calls, "1"))).value
    os.kill(first["parent"], signal.SIGKILL)
    assert gone(first["parent"])
    second = (await runner.call(call(t.count_calls, "2"))).value
    assert second["calls"] == 1 and second["parent"] != first["parent"]
    await runner.close()


async def test_a_call_renewed_by_heartbeats_runs_past_its_first_deadline(
    runner: ToolRunner,
) -> None:
    lanes = runner.lanes
    assert isinstance(lanes, LocalLanes)
    lanes.renew("r", time.monotonic() + 0.6)
    beating = True

    def beat() -> None:
        while beating:
            time.sleep(0.1)
            lanes.renew("r", time.monotonic() + 0.6)

    heart = threading.Thread(target=beat)
    heart.start()
    try:
        assert (await runner.call(call(t.nap, "1", seconds=1.5))).value > 0
    finally:
        beating = False
        heart.join()


async def test_a_call_whose_lease_is_not_renewed_stops_itself(runner: ToolRunner) -> None:
    """The worker is frozen, say: nothing renews, and the template kills the call at the
    deadline, long before the tool's own 30 s."""
    lanes = runner.lanes
    assert isinstance(lanes, LocalLanes)
    lanes.renew("r", time.monotonic() + 1.0)
    begun = time.monotonic()
    with pytest.raises(ToolFailed, match=r"LeaseLost.*lease ran out or was lost"):
        await runner.call(call(t.nap, "1", seconds=30))
    assert time.monotonic() - begun < 3


async def test_a_lost_lease_kills_the_runs_calls_at_once(
    runner: ToolRunner, tmp_path: Path
) -> None:
    lanes = runner.lanes
    assert isinstance(lanes, LocalLanes)
    loop = asyncio.get_running_loop()
    pidfile = tmp_path / "helper.pid"
    call_task = asyncio.ensure_future(
        runner.call(call(t.start_then_hang, "1", pidfile=str(pidfile)))
    )
    while not pidfile.exists() or not pidfile.read_text():
        await asyncio.sleep(0.02)
    begun = time.monotonic()
    await loop.run_in_executor(None, lanes.lease_lost, "r")  # from the heartbeat's thread
    with pytest.raises(ToolFailed, match="LeaseLost"):
        await call_task
    assert time.monotonic() - begun < 1  # not the 3 s of its wall timeout
    assert gone(int(pidfile.read_text()))  # and what it started died with it


@pytest.mark.parametrize("tool", [t.nap, t.session_nap], ids=["one-shot", "session"])
async def test_a_call_whose_lease_is_renewed_then_not_stops_once_renewals_stop(
    runner: ToolRunner, tool: ToolDef
) -> None:
    """Renewed for a while (the call outlives its first deadline), then no more: the worker
    froze. A one-shot call is killed by its template; a session's process kills itself."""
    lanes = runner.lanes
    assert isinstance(lanes, LocalLanes)
    lanes.renew("r", time.monotonic() + 0.6)
    beating = True

    def beat() -> None:
        for _ in range(8):  # 0.8 s of renewals
            if not beating:
                return
            time.sleep(0.1)
            lanes.renew("r", time.monotonic() + 0.6)

    heart = threading.Thread(target=beat)
    heart.start()
    begun = time.monotonic()
    try:
        with pytest.raises(ToolFailed, match="LeaseLost"):
            await runner.call(call(tool, "1", seconds=30))
    finally:
        beating = False
        heart.join()
    assert 1.2 < time.monotonic() - begun < 4  # after the renewals stopped, long before 30 s


async def test_a_worker_frozen_before_it_sends_the_call_finds_it_stopped_not_broken(
    runner: ToolRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Frozen between the fork and the request (SIGSTOP past the lease): the template has
    killed the child by the time the worker writes, and the write fails. The call is
    interrupted for lack of a lease, as a crash would leave it, not a BrokenPipeError that
    fails the run (seen once in the 1,000-run pause storm)."""
    from tether.foundation.tools import forkserver

    lanes = runner.lanes
    assert isinstance(lanes, LocalLanes)
    await runner.call(call(t.nap, "0", seconds=0))  # a warm template
    frozen = forkserver.request

    def late(invocation: ToolInvocation) -> bytes:
        time.sleep(0.8)  # the deadline passes meanwhile, and the template kills the child
        return frozen(invocation)

    monkeypatch.setattr(forkserver, "request", late)
    lanes.renew("r", time.monotonic() + 0.2)
    with pytest.raises(ToolFailed, match=r"LeaseLost"):
        await runner.call(call(t.nap, "1", seconds=30))
