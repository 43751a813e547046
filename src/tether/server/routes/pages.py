"""The web UI: runs, run detail, parked runs, schedules, workflows and costs, the decision
triggers, and the forms that steer runs. Each form posts to a page route that calls the same
`Tether` method as the API and answers 303 to the page to look at next, so every action works
without JavaScript.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from tether.errors import InvalidInput
from tether.foundation.checkpoint.contract import RunStatus
from tether.server.access import (
    MayCancel,
    MayRaiseBudget,
    MayResolve,
    MayRetry,
    MaySchedule,
    MayStart,
    Reader,
    TetherDep,
    state_of,
)
from tether.server.auth import SESSION_COOKIE, SESSION_SECONDS
from tether.server.paging import MAX_PAGE, RunQuery, page, standing
from tether.server.rendering import render
from tether.server.routes.catalog import daily, queue_views, workflow_versions
from tether.server.timeline import full_value, rows
from tether.triggers import measure, parse_window

router = APIRouter(include_in_schema=False)
PARKED = [RunStatus.NEEDS_ATTENTION, RunStatus.PAUSED]
DAILY_DAYS = 14  # the workflows page's cost-by-day table; the API takes any `days`


def _see(path: str) -> Response:
    return RedirectResponse(path, status_code=303)


@router.get("/login")
def login(request: Request, token: str) -> Response:
    """Spend a one-time login link: set the session cookie and go to the runs."""
    session = state_of(request).auth.sign_in(token)
    response = _see("/")
    response.set_cookie(
        SESSION_COOKIE,
        session,
        max_age=int(SESSION_SECONDS),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
def logout(_: Reader) -> Response:
    response = _see("/signed-out")
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/signed-out")
def signed_out(request: Request) -> Response:
    message = "You are signed out. Open a new login link to sign in again."
    return render(request, "error.html", code=200, error="signed out", message=message)


def _query(
    workflow: str | None, version: str | None, statuses: list[str] | None, stranded: bool
) -> RunQuery:
    """The filter form's fields; an empty one (its "any" choice) filters nothing."""
    known = {s.value: s for s in RunStatus}
    wrong = [s for s in statuses or [] if s and s not in known]
    if wrong:
        raise InvalidInput("status", f"unknown status {wrong[0]!r}; one of {', '.join(known)}")
    return RunQuery(
        workflow=workflow or None,
        version=version or None,
        statuses=[known[s] for s in statuses or [] if s],
        stranded=stranded,
    )


@router.get("/")
def runs_page(
    request: Request,
    t: TetherDep,
    _: Reader,
    workflow: str | None = None,
    version: str | None = None,
    run_status: Annotated[list[str] | None, Query(alias="status")] = None,
    stranded: bool = False,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    fragment: bool = False,
) -> Response:
    query = _query(workflow, version, run_status, stranded)
    runs, next_cursor = page(t, query, limit, cursor)
    context: dict[str, Any] = {
        "runs": runs,
        "costs": t.costs([r.id for r in runs]),
        "next_cursor": next_cursor,
        "query": query,
        "statuses": list(RunStatus),
        "workflows": sorted({wid.partition("@")[0] for wid in t.registry.ids()}),
        "standing": standing(t, runs),
        # the filters alone, for the live fragment's URL and the next page's link
        "params": urlencode(
            [
                (k, v)
                for k, v in request.query_params.multi_items()
                if k not in ("cursor", "fragment")
            ]
        ),
    }
    return render(request, "runs_table.html" if fragment else "runs.html", **context)


@router.post("/runs")
def start_page(
    t: TetherDep,
    who: MayStart,
    workflow: Annotated[str, Form()],
    input: Annotated[str, Form()] = "{}",
    key: Annotated[str, Form()] = "",
) -> Response:
    try:
        data = json.loads(input or "{}")
    except ValueError as e:
        raise InvalidInput("input", f"not valid JSON: {e}") from None
    run_id = t.start(workflow, data, key=key or None, identity=who)
    return _see(f"/runs/{run_id}")


@router.get("/runs/{run_id}")
def run_page(run_id: str, request: Request, t: TetherDep, _: Reader) -> Response:
    view = t.inspect(run_id)
    return render(
        request,
        "run.html",
        view=view,
        steps=rows(t, view),
        input=t.codec.resolve(view.run.input),
        output=t.codec.resolve(view.run.output) if view.run.output else None,
        standing=standing(t, [view.run])[view.run.id],
    )


@router.get("/runs/{run_id}/steps/{step_id}/{part}")
def step_value(run_id: str, step_id: str, part: str, t: TetherDep, _: Reader) -> Response:
    if part not in ("input", "output", "error"):
        raise InvalidInput("part", "one of input, output, error")
    return PlainTextResponse(full_value(t, run_id, step_id, part))


@router.post("/runs/{run_id}/cancel")
def cancel_page(run_id: str, t: TetherDep, _: MayCancel) -> Response:
    t.cancel(run_id)
    return _see(f"/runs/{run_id}")


@router.post("/runs/{run_id}/retry")
def retry_page(run_id: str, t: TetherDep, _: MayRetry) -> Response:
    t.retry(run_id)
    return _see(f"/runs/{run_id}")


@router.post("/runs/{run_id}/resolve")
def resolve_page(
    run_id: str,
    t: TetherDep,
    _: MayResolve,
    step_id: Annotated[str, Form()],
    decision: Annotated[str, Form()],
    result: Annotated[str, Form()] = "",
) -> Response:
    if decision not in ("result", "skip", "rerun"):
        raise InvalidInput("decision", "one of result, skip, rerun")
    value = None
    if decision == "result":
        try:
            value = json.loads(result)
        except ValueError as e:
            raise InvalidInput("result", f"not valid JSON: {e}") from None
    t.resolve(run_id, step_id, result=value, skip=decision == "skip", rerun=decision == "rerun")
    return _see(f"/runs/{run_id}")


@router.post("/runs/{run_id}/budget")
def budget_page(
    run_id: str, t: TetherDep, _: MayRaiseBudget, usd: Annotated[float, Form(gt=0)]
) -> Response:
    t.raise_budget(run_id, usd)
    return _see(f"/runs/{run_id}")


@router.get("/parked")
def parked_page(request: Request, t: TetherDep, _: Reader) -> Response:
    runs, _next = page(t, RunQuery(statuses=PARKED), MAX_PAGE)
    return render(request, "parked.html", runs=runs)


@router.get("/schedules")
def schedules_page(request: Request, t: TetherDep, _: Reader) -> Response:
    return render(request, "schedules.html", schedules=t.schedules(), workflows=t.registry.ids())


@router.post("/schedules")
def add_schedule_page(
    t: TetherDep,
    _: MaySchedule,
    name: Annotated[str, Form()],
    cron: Annotated[str, Form()],
    workflow: Annotated[str, Form()],
    input: Annotated[str, Form()] = "{}",
) -> Response:
    try:
        data = json.loads(input or "{}")
    except ValueError as e:
        raise InvalidInput("input", f"not valid JSON: {e}") from None
    t.add_schedule(name, cron, workflow, data)
    return _see("/schedules")


@router.post("/schedules/{name}/remove")
def remove_schedule_page(name: str, t: TetherDep, _: MaySchedule) -> Response:
    t.remove_schedule(name)
    return _see("/schedules")


@router.get("/workflows")
def workflows_page(request: Request, t: TetherDep, _: Reader) -> Response:
    found = workflow_versions(t)
    totals = t.workflow_costs(t.registry.ids())
    return render(
        request,
        "workflows.html",
        workflows=found,
        queues=queue_views(t),
        totals=totals,
        daily=daily(t, DAILY_DAYS),
    )


@router.get("/triggers")
def triggers_page(request: Request, t: TetherDep, _: Reader, since: str = "30d") -> Response:
    return render(
        request, "triggers.html", triggers=measure(t, parse_window(since, "since")), since=since
    )
