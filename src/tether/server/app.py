"""`create_app`: the FastAPI app behind `tether serve`, the JSON API and the web pages together.

The app holds one `Tether`, one `Authenticator` and one `ChangeWatcher` (started with the app,
stopped with it). Request bodies over `MAX_BODY_BYTES` are refused with 413 as they arrive,
before anything reads them, whether or not the client declared a length.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tether.client import Tether
from tether.server import errors
from tether.server.access import ServerState
from tether.server.auth import Authenticator
from tether.server.errors import MAX_BODY_BYTES, ErrorBody
from tether.server.routes import (
    approval_pages,
    approvals,
    catalog,
    pages,
    runs,
    slack,
    streams,
    webhook,
)
from tether.server.watcher import ChangeWatcher

STATIC = Path(__file__).parent / "static"


def create_app(tether: Tether, auth: Authenticator) -> FastAPI:
    watcher = ChangeWatcher(tether.checkpointer)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        import asyncio

        watcher.start(asyncio.get_running_loop())
        try:
            yield
        finally:
            watcher.close()

    app = FastAPI(
        title="tether",
        summary="Watch and steer durable agent runs",
        version="1",
        lifespan=lifespan,
    )
    app.state.tether = ServerState(tether=tether, auth=auth, watcher=watcher)
    errors.install(app)
    for module in (runs, approvals, slack, webhook, streams, catalog, pages, approval_pages):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(BodyLimit)
    return app


class BodyLimit:
    """413 for a body over `MAX_BODY_BYTES`: by its Content-Length, or as its chunks arrive."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            await _too_large(send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_BODY_BYTES:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await _too_large(send)


class _TooLarge(HTTPException):
    """Raised from inside the body's reader: FastAPI passes an HTTPException through as is
    (any other error there becomes its generic 400), and the handlers answer 413."""

    def __init__(self) -> None:
        super().__init__(413, f"request body over the limit of {MAX_BODY_BYTES} bytes")


async def _too_large(send: Send) -> None:
    body = ErrorBody(
        error="too_large", message=f"request body over the limit of {MAX_BODY_BYTES} bytes"
    ).model_dump_json()
    headers: list[Any] = [(b"content-type", b"application/json"), (b"connection", b"close")]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body.encode()})
