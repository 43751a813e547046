"""The local lane forks each one-shot call from a warm template: every call is still a
process of its own, a timeout still kills all it started, and a dead template is replaced."""

from __future__ import annotations

import os
import signal
import sys
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
