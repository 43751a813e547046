"""A real server and a real browser for the UI tests: uvicorn on a free loopback port in a
thread, and Debian's Chromium driven by Playwright (never Playwright's own download)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn

from tether import Tether
from tether.server.app import create_app
from tether.server.auth import Authenticator

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def live_server(t: Tether, auth: Authenticator) -> Iterator[str]:
    """The app served on 127.0.0.1 until the block ends; yields its base URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(create_app(t, auth), host="127.0.0.1", port=port, log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started:
        assert time.time() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def skip_without_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium: scripts/services.sh installs Debian's chromium")
