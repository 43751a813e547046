"""I1 lanes through the runtime: the same workflow moves from the `local` lane to `bubblewrap`
by configuration only, and there the tool really is isolated; a tool over its memory limit is
killed, the step fails naming the limit, and the worker goes on."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.workers import kill_worker_when, run_worker_until
from tether import RunStatus, Tether


@pytest.fixture
def listening() -> Iterator[int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield server.getsockname()[1]
    server.close()


@pytest.mark.parametrize("lane", ["local", "bubblewrap"])
def test_swapping_the_tool_lane_is_configuration_only_and_bubblewrap_isolates(
    agent_tether: Callable[..., Tether],
    tmp_path: Path,
    listening: int,
    lane: str,
) -> None:
    """The same probe on both lanes: under bubblewrap it can read neither tether's database,
    nor /etc/shadow, nor another run's session, nor the worker's environment, cannot write
    outside its directory or reach even loopback, and runs as nobody. On `local` it can do
    all of that: the local lane limits resources and is no security boundary (README)."""
    t = agent_tether(tools=lane)
    data = tmp_path / ".tether"
    other = data / "tools" / "sessions" / "another-run" / "notes.txt"
    other.parent.mkdir(parents=True)
    other.write_text("another run's state")
    secrets = [str(data / "tether.db"), "/etc/shadow", str(other)]
    outside = tmp_path / "escaped.txt"
    probe = {
        "outside": str(outside), "port": listening, "secrets": secrets, "worker": os.getpid(),
        "variable": _worker_variable(),
    }  # fmt: skip
    run = t.run(t.start("probing", probe))
    assert run.status is RunStatus.COMPLETED, run.error
    escape = t.output(run)
    if lane == "bubblewrap":
        assert escape == {
            "wrote_outside": False, "connected": False, "read": [], "worker_env": False,
            "uid": 65534,
        }  # fmt: skip
        assert not outside.exists()
    else:
        assert escape == {
            "wrote_outside": True, "connected": True, "read": secrets, "worker_env": True,
            "uid": os.getuid(),
        }  # fmt: skip


def _worker_variable() -> str:
    """A variable this process was started with that no tool is given (a tool's environment
    is small on every lane, so only reading the worker's own can show it)."""
    given = {"PATH", "PYTHONPATH", "HOME", "TMPDIR", "PYTHONDONTWRITEBYTECODE", "LANG", "LC_ALL"}
    started = Path("/proc/self/environ").read_bytes().decode(errors="replace").split("\0")
    names = sorted({v.partition("=")[0] for v in started if "=" in v} - given - {"TZ"})
    if not names:
        pytest.skip("this process was started with no variable a tool is not given")
    return names[0]


def test_tool_over_its_memory_limit_is_killed_and_the_worker_goes_on(
    agent_tether: Callable[..., Tether],
) -> None:
    t = agent_tether()
    hog = t.run(t.start("hogging", {"mb": 1024}))
    assert hog.status is RunStatus.FAILED
    error = json.loads(hog.error or "{}")
    assert error["type"] == "ToolFailed" and "memory" in error["message"]
    assert t.run(t.start("hogging", {"mb": 16})).status is RunStatus.COMPLETED  # same process


def test_send_email_fires_once_when_killed_after_it_finished(
    agent_tether: Callable[..., Tether], tmp_path: Path
) -> None:
    t = agent_tether()
    outbox, marker = tmp_path / "outbox.txt", tmp_path / "work.txt"
    run_id = t.start("mail_then_work", {"outbox": str(outbox), "marker": str(marker)})
    env = {"TETHER_WORKFLOWS": json.dumps(["tests.receipts.agents"])}
    # the email went out and the next step is running: kill the worker there
    kill_worker_when(tmp_path / ".tether", marker.exists, env)
    run_worker_until(
        tmp_path / ".tether", lambda: t.status(run_id).status is RunStatus.COMPLETED, env
    )
    assert outbox.read_text().splitlines() == ["ana@example.com\thello"]


def test_session_tool_keeps_state_holds_no_process_while_parked_and_is_removed_at_the_end(
    agent_tether: Callable[..., Tether], tmp_path: Path
) -> None:
    import threading

    t = agent_tether()
    # 1 s: the nap must not be over when `run` looks again, after parking has stopped the
    # session's process; on a loaded two-core host 0.2 s often was, and the run went on
    run_id = t.start("tallying", {"pause": 1.0})
    stop = threading.Event()
    t.run(run_id, stop=stop, on_wait=lambda _run: stop.set())
    assert t.status(run_id).status is RunStatus.SLEEPING
    sessions = tmp_path / ".tether" / "tools" / "sessions"
    (session,) = [p for p in sessions.iterdir() if p.is_dir()]
    assert (session / "count").read_text() == "2"  # state on disk while parked
    first = next(r for r in t.journal(run_id) if r.name == "tally")
    status = Path(f"/proc/{json.loads(first.value or '{}')['pid']}/status")
    assert not status.exists() or "zombie" in status.read_text()  # no process while parked
    run = t.run(run_id)
    assert run.status is RunStatus.COMPLETED
    out = t.output(run)
    assert out["counts"] == [1, 2, 3]  # the session's state survived the park
    assert out["pids"][0] == out["pids"][1] != out["pids"][2]  # one process, restarted after
    assert not session.exists()  # the run ended: its session is gone
