"""`tether approvals list | show | approve | reject`: I6's local transport.

The approver is whoever the `--token` (or `TETHER_TOKEN`) names, verified by I8; a decision by
someone not among a request's approvers, or on a request already decided, is refused with who
decided and nothing changes. A decision wakes the run that asked.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console

from tether.client import Tether
from tether.errors import InvalidInput
from tether.foundation.hitl.contract import ApprovalRequest, Decision, RequestState, Verdict
from tether.settings import Settings

approvals_app = typer.Typer(help="Approval requests (I6).", no_args_is_help=True)
out = Console(soft_wrap=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
Token = Annotated[
    str, typer.Option(envvar="TETHER_TOKEN", help="Your I8 token: the decision names you")
]
Reason = Annotated[str | None, typer.Option(help="Why: kept with the decision")]


def _open() -> Tether:
    return Tether(Settings())


def _line(r: ApprovalRequest) -> str:
    deadline = f" until {r.deadline:%Y-%m-%d %H:%M:%S} UTC" if r.deadline else ""
    who = ", ".join(r.approvers)
    return f"{r.id}  {r.state.value:<8} {r.action.name}  run {r.run_id}  by {who}{deadline}"


@approvals_app.command("list")
def approvals_list(
    state: Annotated[
        str, typer.Option(help="pending, approved, rejected, edited, or 'any'")
    ] = "pending",
    run: Annotated[str | None, typer.Option(help="Only this run's requests")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Approval requests, oldest first (pending ones by default)."""
    with _open() as t:
        found = t.approvals(state=None if state == "any" else RequestState(state), run_id=run)
    if as_json:
        out.print_json(json.dumps([r.model_dump(mode="json") for r in found]))
        return
    for r in found:
        out.print(_line(r), highlight=False, markup=False)
    if not found:
        out.print(f"no {'' if state == 'any' else state + ' '}approval requests", highlight=False)


@approvals_app.command("show")
def approvals_show(request_id: str, as_json: JsonFlag = False) -> None:
    """One request: the action and its arguments' hash, approvers, deadline, history."""
    with _open() as t:
        r = t.approval(request_id)
    if as_json:
        out.print_json(r.model_dump_json())
        return
    out.print(_line(r), highlight=False, markup=False)
    out.print(f"step {r.step_id}; on expiry: {r.on_expire.value}", highlight=False)
    if r.reason:
        out.print(f"why: {r.reason}", highlight=False, markup=False)
    out.print(f"action: {r.action.name} {r.action.args_hash}", highlight=False, markup=False)
    out.print(json.dumps(r.action.args, indent=2), highlight=False, markup=False)
    for h in r.history:
        why = f" ({h.reason})" if h.reason else ""
        out.print(
            f"  {h.at:%Y-%m-%d %H:%M:%S} {h.event} by {h.by}{why} {h.args_hash or ''}",
            highlight=False,
            markup=False,
        )


def _decided(d: Decision) -> None:
    out.print(f"{d.request_id}: {d.verdict.value} by {d.by}; the run resumes", highlight=False)


@approvals_app.command("approve")
def approvals_approve(
    request_id: str,
    token: Token,
    reason: Reason = None,
    args: Annotated[
        str | None,
        typer.Option("--args", help="Edited arguments as JSON: approve these instead"),
    ] = None,
) -> None:
    """Approve the request (with --args: approve edited arguments, which the run then uses)."""
    edited: dict[str, Any] | None = None
    if args is not None:
        try:
            edited = json.loads(args)
        except json.JSONDecodeError as e:
            raise InvalidInput("--args", f"not valid JSON: {e}") from None
        if not isinstance(edited, dict):
            raise InvalidInput("--args", "the edited arguments are a JSON object")
    verdict = Verdict.APPROVED if edited is None else Verdict.EDITED
    with _open() as t:
        _decided(t.decide(request_id, verdict, token=token, reason=reason, args=edited))


@approvals_app.command("reject")
def approvals_reject(request_id: str, token: Token, reason: Reason = None) -> None:
    """Reject the request: the run takes its rejection path and the action does not run."""
    with _open() as t:
        _decided(t.decide(request_id, Verdict.REJECTED, token=token, reason=reason))
