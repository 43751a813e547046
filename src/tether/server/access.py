"""The dependencies every route declares: the server's `Tether`, and a caller allowed to do the
route's action (authenticated through I8, authorised by I9's API rules and audited by
`Authenticator`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from tether.client import Tether
from tether.foundation.identity.contract import Identity
from tether.server.auth import Authenticator
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


async def _caller(request: Request, action: str) -> Identity:
    auth = state_of(request).auth
    identity, session = auth.identify(request)
    if session is not None and request.method not in ("GET", "HEAD", "OPTIONS"):
        await auth.check_csrf(request, session)
    auth.authorise(identity, action, request)
    request.state.identity = identity
    return identity


def _may(action: str) -> Callable[[Request], Awaitable[Identity]]:
    async def caller(request: Request) -> Identity:
        return await _caller(request, action)

    return caller


TetherDep = Annotated[Tether, Depends(_tether)]
Reader = Annotated[Identity, Depends(_may("read"))]
MayStart = Annotated[Identity, Depends(_may("start"))]
MayCancel = Annotated[Identity, Depends(_may("cancel"))]
MayRetry = Annotated[Identity, Depends(_may("retry"))]
MayFork = Annotated[Identity, Depends(_may("fork"))]
MayResolve = Annotated[Identity, Depends(_may("resolve"))]
MayRaiseBudget = Annotated[Identity, Depends(_may("budget"))]
MaySendEvent = Annotated[Identity, Depends(_may("event"))]
MaySchedule = Annotated[Identity, Depends(_may("schedule"))]
MayApprove = Annotated[Identity, Depends(_may("approve"))]
