"""`/api/approvals`: I6's requests, and an approver's decision on one.

The approver is the caller (I8, as every route): the broker refuses a caller who is not among a
request's approvers (403) and a second decision (409, naming who won); a decision wakes the run
that asked.
"""

from __future__ import annotations

from fastapi import APIRouter

from tether.foundation.hitl.contract import ApprovalRequest, Decision, RequestState, Verdict
from tether.server.access import MayApprove, Reader, TetherDep
from tether.server.errors import RESPONSES
from tether.server.models import Decide

router = APIRouter(prefix="/api", tags=["approvals"], responses=RESPONSES)


@router.get(
    "/approvals", response_model=list[ApprovalRequest], summary="Approval requests, oldest first"
)
def list_approvals(
    t: TetherDep, _: Reader, state: RequestState | None = None, run_id: str | None = None
) -> list[ApprovalRequest]:
    return t.approvals(state=state, run_id=run_id)


@router.get(
    "/approvals/{request_id}",
    response_model=ApprovalRequest,
    summary="One approval request with its decision history",
)
def get_approval(request_id: str, t: TetherDep, _: Reader) -> ApprovalRequest:
    return t.approval(request_id)


@router.post(
    "/approvals/{request_id}/approve",
    response_model=Decision,
    summary="Approve (with args: approve edited arguments) as the caller",
)
def approve(request_id: str, body: Decide, t: TetherDep, who: MayApprove) -> Decision:
    verdict = Verdict.APPROVED if body.args is None else Verdict.EDITED
    return t.decide(request_id, verdict, identity=who, reason=body.reason, args=body.args)


@router.post(
    "/approvals/{request_id}/reject", response_model=Decision, summary="Reject as the caller"
)
def reject(request_id: str, body: Decide, t: TetherDep, who: MayApprove) -> Decision:
    return t.decide(request_id, Verdict.REJECTED, identity=who, reason=body.reason)
