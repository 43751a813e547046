"""moto in server mode on a free port: a real HTTP S3 endpoint (reached by endpoint URL, as R2
is), not an in-process mock, with the dummy credentials it accepts."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextmanager
def moto_server() -> Iterator[str]:
    """The endpoint URL of a moto S3 server that lives as long as the block."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
