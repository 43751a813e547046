"""The dependencies every route declares: the server's `Tether`, and a caller allowed to read
or to operate (authenticated through I8, authorised and audited by `Authenticator`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from tether.client import Tether
from tether.foundation.identity.contract import Identity
from tether.server.auth import Action, Authenticator
from tether.server.watcher import ChangeWatcher


@dataclass
class ServerState:
    tether: Tether
    auth: Authenticator
    watcher: ChangeWatcher


def state_of(request: Request) -> ServerState:
    state: ServerState = request.app.state.tether
    return state


def _tether(request: Request) -> Tether:
    return state_of(request).tether


async def _caller(request: Request, action: Action) -> Identity:
    auth = state_of(request).auth
    identity, session = auth.identify(request)
    if session is not None and request.method not in ("GET", "HEAD", "OPTIONS"):
        await auth.check_csrf(request, session)
    auth.authorise(identity, action, request)
    request.state.identity = identity
    return identity


async def _reader(request: Request) -> Identity:
    return await _caller(request, "read")


async def _operator(request: Request) -> Identity:
    return await _caller(request, "operate")


TetherDep = Annotated[Tether, Depends(_tether)]
Reader = Annotated[Identity, Depends(_reader)]
Operator = Annotated[Identity, Depends(_operator)]
