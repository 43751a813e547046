"""What a signed callback from outside (Slack, the approval webhook) goes through before it may
decide anything: its transport must be configured, its signature and timestamp must verify,
and its user must map to an I8 identity. A refusal decides nothing."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from tether.client import Tether
from tether.foundation.hitl.contract import CallbackRefused
from tether.server.errors import ApiError


async def verified(request: Request, t: Tether, transport_name: str, label: str) -> Any:
    """(transport, payload, approver) of a callback whose signature holds: 404 when the
    transport is not configured, 401 for a forged or stale signature, 403 for an unmapped user
    or a body that is no decision."""
    transport: Any = t.foundations.hitl_transports.get(transport_name)
    if transport is None:
        raise ApiError(404, "not_found", f"no {label} transport is configured (hitl_transports)")
    body = await request.body()
    try:
        payload = transport.verify(body, request.headers)
        return transport, payload, transport.approver(payload)
    except CallbackRefused as e:
        raise ApiError(401 if e.forged else 403, "refused", str(e)) from None
