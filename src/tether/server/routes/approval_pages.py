"""The approvals page (I6 in the web UI): what waits for a decision, with the exact action, its
argument hash and arguments, the approvers and the deadline; and the forms that approve,
reject, or approve edited arguments as the signed-in person.

Each form posts here, calls `Tether.decide` as the API does, and answers 303 back to the
request on the page, which then shows who decided. A refused decision (not an approver, or
decided already) is the error page with the broker's reason: nothing changed.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from tether.client import Tether
from tether.errors import InvalidInput
from tether.foundation.hitl.contract import RequestState, Verdict
from tether.foundation.identity.contract import Identity
from tether.server.access import MayApprove, Reader, TetherDep
from tether.server.rendering import render

router = APIRouter(include_in_schema=False)
DECIDED_SHOWN = 20  # the most recent decisions listed under the pending requests

ReasonField = Annotated[str, Form()]


@router.get("/approvals")
def approvals_page(request: Request, t: TetherDep, _: Reader) -> Response:
    every = t.approvals()
    pending = [r for r in every if r.state is RequestState.PENDING]
    decided = [r for r in reversed(every) if r.state is not RequestState.PENDING]
    return render(
        request,
        "approvals.html",
        pending=pending,
        decided=decided[:DECIDED_SHOWN],
        pretty=lambda args: json.dumps(args, indent=2, sort_keys=True, default=str),
    )


def _decided(
    t: Tether,
    request_id: str,
    verdict: Verdict,
    who: Identity,
    reason: str,
    args: dict[str, Any] | None = None,
) -> Response:
    t.decide(request_id, verdict, identity=who, reason=reason or None, args=args)
    return RedirectResponse(f"/approvals#r-{request_id}", status_code=303)


@router.post("/approvals/{request_id}/approve")
def approve_page(
    request_id: str, t: TetherDep, who: MayApprove, reason: ReasonField = ""
) -> Response:
    return _decided(t, request_id, Verdict.APPROVED, who, reason)


@router.post("/approvals/{request_id}/reject")
def reject_page(
    request_id: str, t: TetherDep, who: MayApprove, reason: ReasonField = ""
) -> Response:
    return _decided(t, request_id, Verdict.REJECTED, who, reason)


@router.post("/approvals/{request_id}/edit")
def edit_page(
    request_id: str,
    t: TetherDep,
    who: MayApprove,
    args: Annotated[str, Form()],
    reason: ReasonField = "",
) -> Response:
    try:
        edited = json.loads(args)
    except ValueError as e:
        raise InvalidInput("args", f"not valid JSON: {e}") from None
    if not isinstance(edited, dict):
        raise InvalidInput("args", "the edited arguments must be a JSON object")
    return _decided(t, request_id, Verdict.EDITED, who, reason, edited)
