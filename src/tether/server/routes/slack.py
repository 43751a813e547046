"""`/api/hitl/slack/actions`: the Approve / Reject buttons of I6's Slack messages.

Slack signs the request; nothing else authenticates it. A bad signature, a stale timestamp, a
payload from another workspace or from a Slack user mapped to no identity is refused (401 /
403) and decides nothing; a replayed click finds the request decided (409). A decision wakes
the run and replaces the message's buttons with it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from tether.foundation.hitl.contract import Verdict
from tether.foundation.identity.contract import Identity
from tether.server.access import TetherDep
from tether.server.callbacks import verified
from tether.server.errors import RESPONSES, ApiError

router = APIRouter(prefix="/api/hitl", tags=["approvals"], responses=RESPONSES)


@router.post("/slack/actions", summary="Slack's interaction callback (signed by Slack)")
async def slack_actions(request: Request, t: TetherDep) -> dict[str, Any]:
    transport, payload, approver = await verified(request, t, "slack", "Slack")
    (action,) = payload.get("actions") or [{}]
    verdict = {"approve": Verdict.APPROVED, "reject": Verdict.REJECTED}.get(
        action.get("action_id", "")
    )
    if verdict is None:
        raise ApiError(422, "invalid_input", f"unknown Slack action {action.get('action_id')!r}")
    who = Identity(subject=approver.subject, roles=approver.roles)
    decision = t.decide(str(action.get("value", "")), verdict, identity=who)
    transport.update(payload, decision)
    return {"ok": True, "decision": decision.model_dump(mode="json")}
