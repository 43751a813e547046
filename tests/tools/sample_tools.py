"""Tools the I1 tests call. Top-level functions in an importable module, as sandboxes
import them by `module:qualname`; side effects go to files the test names."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from pathlib import Path

from pydantic import BaseModel

from tether.foundation.tools.decorator import tool


class Greeting(BaseModel):
    text: str
    length: int


@tool(replay="pure")
def add(a: int, b: int = 1) -> int:
    """Add two numbers."""
    return a + b


@tool(replay="pure")
async def greet(name: str, punctuation: str = "!") -> Greeting:
    """Greet someone, asynchronously."""
    await asyncio.sleep(0)
    text = f"hello {name}{punctuation}"
    return Greeting(text=text, length=len(text))


@tool(replay="unsafe_on_replay")
def send_email(outbox: str, to: str, body: str) -> str:
    """Append one email to an outbox file: a side effect that must not happen twice."""
    with open(outbox, "a") as f:
        f.write(f"{to}\t{body}\n")
    return f"sent to {to}"


@tool(replay="unsafe_on_replay")
def send_then_fail(outbox: str) -> str:
    with open(outbox, "a") as f:
        f.write("attempt\n")
    raise RuntimeError("smtp said no")


# 2 s: the child imports this module (and so tether) inside the timeout, about half a second
# on a loaded two-core box, so 0.5 s sometimes timed out before "started" was written.
@tool(replay="unsafe_on_replay", timeout=2.0)
def send_slowly(outbox: str) -> str:
    with open(outbox, "a") as f:
        f.write("started\n")
    time.sleep(30)
    return "never"


@tool(replay="idempotent_with_key")
def charge(ledger: str, amount: int, idempotency_key: str) -> str:
    """Record a charge under the key the runner passes."""
    with open(ledger, "a") as f:
        f.write(f"{idempotency_key}\t{amount}\n")
    return idempotency_key


@tool(replay="pure")
def big_result(size: int) -> str:
    return "x" * size


@tool(replay="pure", memory_mb=200)
def allocate(mb: int) -> int:
    block = bytearray(mb * 1024 * 1024)
    return len(block)


@tool(replay="pure", timeout=30, cpu_seconds=1)
def spin() -> int:
    n = 0
    while True:
        n += 1


@tool(replay="pure", timeout=0.5)
def sleep_forever() -> int:
    time.sleep(60)
    return 0


@tool(replay="pure", timeout=30)
def nap(seconds: float) -> int:
    """Sleep, then report the pid that slept."""
    time.sleep(seconds)
    return os.getpid()


@tool(replay="pure")
def where_am_i() -> str:
    return os.getcwd()


@tool(replay="pure")
def write_file(path: str, text: str) -> str:
    """Write a file; the result says whether it worked."""
    try:
        Path(path).write_text(text)
    except OSError as e:
        return f"refused: {e.strerror}"
    return "written"


@tool(replay="pure")
def read_file(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


@tool(replay="pure")
def can_connect(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        return False
    return True


@tool(replay="pure", network=True)
def can_connect_with_network(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        return False
    return True


_counter = 0


@tool(replay="pure", persistence="persistent_session", timeout=30)
def session_nap(seconds: float) -> int:
    """`nap`, in a session's long-lived process."""
    time.sleep(seconds)
    return os.getpid()


@tool(replay="pure", persistence="persistent_session")
def session_read(path: str) -> str | None:
    """`read_file`, from a session's long-lived process."""
    try:
        return Path(path).read_text()
    except OSError:
        return None


@tool(replay="pure", persistence="persistent_session")
def session_count(note: str) -> dict[str, object]:
    """Counts calls in this process (memory) and in the run's directory (disk)."""
    global _counter
    _counter += 1
    with open("notes.txt", "a") as f:
        f.write(note + "\n")
    return {
        "in_memory": _counter,
        "on_disk": len(Path("notes.txt").read_text().splitlines()),
        "pid": os.getpid(),
    }


@tool(replay="pure", persistence="persistent_workspace", workspace="shared-notes")
def workspace_append(note: str) -> list[str]:
    with open("notes.txt", "a") as f:
        f.write(note + "\n")
    return Path("notes.txt").read_text().splitlines()


@tool(replay="pure")
def noisy() -> int:
    print("this goes to stderr, not into the protocol")
    return 7


_imported_state = {"calls": 0}


@tool(replay="pure")
def count_calls() -> dict[str, int]:
    """Counts calls in module state: 1 every time if each call is a process of its own."""
    _imported_state["calls"] += 1
    return {"calls": _imported_state["calls"], "pid": os.getpid(), "parent": os.getppid()}


@tool(replay="pure", timeout=3.0)  # time enough to start `sleep` on a loaded host
def start_then_hang(pidfile: str) -> int:
    """Starts a process of its own, writes its pid, and never answers."""
    import subprocess

    helper = subprocess.Popen(["sleep", "60"])
    Path(pidfile).write_text(str(helper.pid))
    time.sleep(60)
    return 0


@tool(replay="pure")
def my_uid() -> int:
    """Which user runs it: tells a bubblewrap lane (nobody, 65534) from a local one."""
    return os.getuid()
