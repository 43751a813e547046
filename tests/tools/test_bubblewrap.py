"""Under bubblewrap a tool is isolated: no network unless declared, nothing writable outside
its own directory; and a machine where bwrap cannot start fails at construction."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tools import sample_tools as t
from tether.errors import ConfigurationError, ToolFailed
from tether.foundation.blobs.files import FileBlobStore
from tether.foundation.tools.backends.bubblewrap import Bubblewrap, BubblewrapLanes
from tether.foundation.tools.contract import ToolDef, ToolInvocation
from tether.foundation.tools.local import LocalLanes
from tether.foundation.tools.memory import MemoryToolResults
from tether.foundation.tools.runner import ToolRunner

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def server() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def runner(tmp_path: Path, isolated: bool) -> ToolRunner:
    lanes = BubblewrapLanes(tmp_path) if isolated else LocalLanes(tmp_path)
    return ToolRunner(MemoryToolResults(), lanes, FileBlobStore(tmp_path / "blobs"))


def call(tool: ToolDef, **args: object) -> ToolInvocation:
    return ToolInvocation(run_id="r", step_id="1", attempt=1, tool=tool, args=dict(args))


async def test_bubblewrap_tool_without_network_cannot_connect(tmp_path: Path, server: int) -> None:
    inv = call(t.can_connect, host="127.0.0.1", port=server)
    assert (await runner(tmp_path / "local", isolated=False).call(inv)).value is True
    assert (await runner(tmp_path / "bwrap", isolated=True).call(inv)).value is False


async def test_bubblewrap_tool_cannot_write_outside_its_workspace(tmp_path: Path) -> None:
    outside = tmp_path / "escape.txt"
    inv = call(t.write_file, path=str(outside), text="out")
    await runner(tmp_path / "bwrap", isolated=True).call(inv)
    assert not outside.exists()
    system = call(t.write_file, path="/usr/tether-escape.txt", text="out")
    assert (await runner(tmp_path / "bwrap", isolated=True).call(system)).value.startswith(
        "refused: Read-only"
    )


async def test_bubblewrap_tool_can_write_its_own_directory(tmp_path: Path) -> None:
    inv = call(t.workspace_append, note="kept")
    assert (await runner(tmp_path, isolated=True).call(inv)).value == ["kept"]
    notes = tmp_path / "tools" / "workspaces" / "shared-notes" / "notes.txt"
    assert notes.read_text() == "kept\n"


def test_bubblewrap_that_cannot_start_fails_at_construction() -> None:
    with pytest.raises(ConfigurationError, match=r"not on PATH.*tools = 'local'"):
        Bubblewrap(binary="no-such-bwrap")


def test_bubblewrap_that_cannot_make_namespaces_fails_at_construction(tmp_path: Path) -> None:
    fake = tmp_path / "bwrap"
    complaint = "bwrap: No permissions to creating new namespace"
    fake.write_text(f"#!/bin/sh\necho '{complaint}' >&2\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(ConfigurationError, match="No permissions to creating new namespace"):
        Bubblewrap(binary=str(fake))


async def test_bubblewrap_tool_holds_no_capabilities(tmp_path: Path) -> None:
    """A call's forked child joins the sandbox's user namespace, which grants every capability
    in it; with any left it could remount its read-only root writable."""
    status = await runner(tmp_path, isolated=True).call(call(t.read_file, path="/proc/self/status"))
    fields = dict(line.split(":", 1) for line in status.value.splitlines())
    assert int(fields["CapEff"], 16) == int(fields["CapBnd"], 16) == 0


def call_at(step: str, tool: ToolDef, **args: object) -> ToolInvocation:
    return ToolInvocation(run_id="r", step_id=step, attempt=1, tool=tool, args=dict(args))


async def test_bubblewrap_tool_sees_no_secrets_of_the_host(tmp_path: Path) -> None:
    """Not /etc/shadow, not the host's accounts (a passwd naming root and nobody only), and
    it runs as nobody."""
    bwrap = runner(tmp_path, isolated=True)
    assert (await bwrap.call(call_at("1", t.read_file, path="/etc/shadow"))).value is None
    passwd = (await bwrap.call(call_at("2", t.read_file, path="/etc/passwd"))).value
    assert [line.split(":")[0] for line in passwd.splitlines()] == ["root", "nobody"]
    status = (await bwrap.call(call_at("3", t.read_file, path="/proc/self/status"))).value
    fields = dict(line.split(":", 1) for line in status.splitlines())
    assert fields["Uid"].split()[0] == "65534"


async def test_bubblewrap_hides_the_data_directory_even_inside_an_import_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkout on sys.path with `.tether/` in it: the checkout is bound for the tool's
    imports, its database is not, and the tool's own workspace there still is."""
    monkeypatch.syspath_prepend(str(tmp_path))
    data = tmp_path / ".tether"
    data.mkdir()
    (data / "tether.db").write_text("every run's journal")
    (tmp_path / "module.py").write_text("# the checkout is importable\n")
    bwrap = runner(data, isolated=True)
    assert (await bwrap.call(call_at("4", t.read_file, path=str(data / "tether.db")))).value is None
    assert (await bwrap.call(call_at("5", t.read_file, path=str(tmp_path / "module.py")))).value
    assert (await bwrap.call(call_at("6", t.workspace_append, note="kept"))).value == ["kept"]


async def test_bubblewrap_session_runs_as_nobody_in_the_same_view(tmp_path: Path) -> None:
    """A session's process is started by bwrap itself, not forked into a sandbox: same view."""
    bwrap = runner(tmp_path, isolated=True)
    status = await bwrap.call(call_at("7", t.session_read, path="/proc/self/status"))
    fields = dict(line.split(":", 1) for line in status.value.splitlines())
    assert fields["Uid"].split()[0] == "65534"
    assert int(fields["CapEff"], 16) == 0
    assert (await bwrap.call(call_at("8", t.session_read, path="/etc/shadow"))).value is None


@pytest.mark.parametrize("tool", [t.nap, t.session_nap], ids=["one-shot", "session"])
async def test_bubblewrap_call_stops_when_its_lease_is_not_renewed(
    tmp_path: Path, tool: ToolDef
) -> None:
    """The deadline reaches into the sandbox: through the template for a one-shot call, and
    through the pipe bwrap hands on for a session's process."""
    bwrap = runner(tmp_path, isolated=True)
    lanes = bwrap.lanes
    assert isinstance(lanes, BubblewrapLanes)
    lanes.renew("r", time.monotonic() + 1.0)
    begun = time.monotonic()
    with pytest.raises(ToolFailed, match="LeaseLost"):
        await bwrap.call(call_at("1", tool, seconds=30))
    assert time.monotonic() - begun < 4


def sandboxes_of_this_process() -> set[int]:
    """The bwrap processes this test's process started (the sandboxes' outer processes)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid, rest = stat.read_text().split(" (", 1)
        except OSError:
            continue  # it ended while we looked
        name, fields = rest.rsplit(") ", 1)
        if name == "bwrap" and int(fields.split()[1]) == os.getpid():
            found.add(int(pid))
    return found


async def test_bubblewrap_ephemeral_calls_alternating_network_each_get_a_matching_sandbox(
    tmp_path: Path, server: int
) -> None:
    """A sandbox built ahead for one network setting never serves a call of the other."""
    bwrap = runner(tmp_path, isolated=True)
    shut, net = t.can_connect, t.can_connect_with_network
    calls = [shut, net, shut, shut, net, net, shut]
    seen = [
        (await bwrap.call(call_at(str(i), tool, host="127.0.0.1", port=server))).value
        for i, tool in enumerate(calls)
    ]
    assert seen == [tool is net for tool in calls]
    await bwrap.lanes.close()


async def test_bubblewrap_ephemeral_call_has_a_fresh_directory_removed_after_it(
    tmp_path: Path,
) -> None:
    bwrap = runner(tmp_path, isolated=True)
    first = (await bwrap.call(call_at("1", t.where_am_i))).value
    second = (await bwrap.call(call_at("2", t.where_am_i))).value
    assert first != second
    assert not Path(first).exists()
    await bwrap.lanes.close()


async def test_bubblewrap_sandbox_built_ahead_is_torn_down_when_the_lanes_close(
    tmp_path: Path,
) -> None:
    bwrap = runner(tmp_path, isolated=True)
    before = sandboxes_of_this_process()
    await bwrap.call(call_at("1", t.where_am_i))
    await asyncio.sleep(0)  # the next call's sandbox is started once this call has answered
    ahead = sandboxes_of_this_process() - before
    assert len(ahead) == 1  # it waits for the next call, in a directory of its own
    (spare,) = ahead
    argv = Path(f"/proc/{spare}/cmdline").read_bytes().decode().split("\0")
    directory = Path(argv[argv.index("--chdir") + 1])
    assert directory.is_dir()
    await bwrap.lanes.close()
    assert spare not in sandboxes_of_this_process()
    assert not directory.exists()
