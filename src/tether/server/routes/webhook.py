"""`/api/hitl/webhook/decisions`: a decision sent back by the approval webhook's receiver.

The receiver signs the body with the secret it shares with tether; nothing else authenticates
it. A bad signature or a stale timestamp is refused (401), a body that is no decision or a user
mapped to no identity (403), a decision on arguments other than the request's (409); a
replayed decision finds the request decided (409, naming who won). Each refusal decides
nothing; a decision wakes the run.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from tether.foundation.hitl.contract import Decision, Verdict
from tether.foundation.identity.contract import Identity
from tether.server.access import TetherDep
from tether.server.callbacks import verified
from tether.server.errors import RESPONSES, ApiError

router = APIRouter(prefix="/api/hitl", tags=["approvals"], responses=RESPONSES)


@router.post(
    "/webhook/decisions",
    response_model=Decision,
    summary="A decision from the approval webhook's receiver (signed with the shared secret)",
)
async def webhook_decision(request: Request, t: TetherDep) -> Decision:
    _, payload, approver = await verified(request, t, "webhook", "webhook")
    asked = t.approval(payload["request_id"])
    if payload["args_hash"] != asked.action.args_hash:
        raise ApiError(
            409,
            "conflict",
            f"the decision is for arguments {payload['args_hash']}, but request {asked.id!r} "
            f"asks about {asked.action.args_hash}; decide on what it asks now",
        )
    verdict = Verdict(payload["verdict"])
    return t.decide(
        asked.id,
        verdict,
        identity=Identity(subject=approver.subject, roles=approver.roles),
        reason=payload.get("reason"),
        args=payload.get("args") if verdict is Verdict.EDITED else None,
    )
