"""`/api/runs`: list, start (in a queue, debounced, throttled), inspect, cancel, retry, fork,
resolve, raise a budget; and events.

Each route is one call on `Tether`; what can go wrong is tether's own error, which the app's
handlers turn into 404 / 409 / 422 (server/errors.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from tether.client import RunView
from tether.foundation.checkpoint.contract import EventReceipt, RunRecord, RunStatus
from tether.foundation.checkpoint.starts import Debounce, Throttle
from tether.server.access import (
    MayCancel,
    MayFork,
    MayRaiseBudget,
    MayResolve,
    MayRetry,
    MaySendEvent,
    MayStart,
    Reader,
    TetherDep,
)
from tether.server.errors import RESPONSES
from tether.server.models import (
    Fork,
    RaiseBudget,
    Resolve,
    RunPage,
    SendEvent,
    Started,
    StartRun,
)
from tether.server.paging import MAX_PAGE, RunQuery, page, standing

router = APIRouter(prefix="/api", tags=["runs"], responses=RESPONSES)


@router.get("/runs", response_model=RunPage, summary="List runs, newest first")
def list_runs(
    t: TetherDep,
    _: Reader,
    workflow: str | None = None,
    version: str | None = None,
    run_status: Annotated[list[RunStatus] | None, Query(alias="status")] = None,
    stranded: bool = False,
    created_after: float | None = Query(None, description="Seconds since the epoch"),
    created_before: float | None = Query(None, description="Seconds since the epoch"),
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> RunPage:
    query = RunQuery(
        workflow=workflow,
        version=version,
        statuses=run_status or [],
        stranded=stranded,
        created_after=created_after,
        created_before=created_before,
    )
    runs, next_cursor = page(t, query, limit, cursor)
    found = standing(t, runs)
    return RunPage(
        runs=runs,
        costs=t.costs([r.id for r in runs]),
        stranded=[run_id for run_id, s in found.items() if s.stranded],
        resumers={run_id: s.versions for run_id, s in found.items()},
        next_cursor=next_cursor,
    )


@router.post(
    "/runs",
    response_model=Started,
    status_code=status.HTTP_201_CREATED,
    summary="Start a run (the same idempotency key returns the same run)",
    description="With `debounce`, a burst of starts with one key makes one pending run, whose "
    "id each of them returns; it starts `period` seconds after the last, with its input.",
)
def start_run(body: StartRun, t: TetherDep, who: MayStart) -> Started:
    d, r = body.debounce, body.throttle
    run_id = t.start(
        body.workflow,
        body.input,
        key=body.key,
        identity=who,
        queue=body.queue,
        concurrency_key=body.concurrency_key,
        priority=body.priority,
        debounce=None if d is None else Debounce(key=d.key, period=d.period),
        throttle=None if r is None else Throttle(starts=r.starts, per=r.per, key=r.key),
    )
    return Started(run_id=run_id)


@router.get("/runs/{run_id}", response_model=RunView, summary="A run with journal and children")
def get_run(run_id: str, t: TetherDep, _: Reader) -> RunView:
    return t.inspect(run_id)


@router.post("/runs/{run_id}/cancel", response_model=RunRecord, summary="Cancel a run")
def cancel_run(run_id: str, t: TetherDep, _: MayCancel) -> RunRecord:
    return t.cancel(run_id)


@router.post("/runs/{run_id}/retry", response_model=RunRecord, summary="Retry a failed run")
def retry_run(run_id: str, t: TetherDep, _: MayRetry) -> RunRecord:
    return t.retry(run_id)


@router.post(
    "/runs/{run_id}/fork",
    response_model=Started,
    status_code=status.HTTP_201_CREATED,
    summary="Fork a run from a step: a new run that keeps what finished before it",
    description="409 for a run that has not finished, unless `cancel_original`; 422 for a "
    "step the run never reached.",
)
def fork_run(run_id: str, body: Fork, t: TetherDep, _: MayFork) -> Started:
    new_id = t.fork(
        run_id, body.from_step, version=body.version, cancel_original=body.cancel_original
    )
    return Started(run_id=new_id)


@router.post(
    "/runs/{run_id}/resolve",
    response_model=RunRecord,
    summary="Decide on a run parked by an interrupted unsafe tool call",
)
def resolve_run(run_id: str, body: Resolve, t: TetherDep, _: MayResolve) -> RunRecord:
    return t.resolve(
        run_id,
        body.step_id,
        result=body.result if body.decision == "result" else None,
        skip=body.decision == "skip",
        rerun=body.decision == "rerun",
    )


@router.post("/runs/{run_id}/budget", response_model=RunRecord, summary="Raise a run's cost cap")
def raise_budget(run_id: str, body: RaiseBudget, t: TetherDep, _: MayRaiseBudget) -> RunRecord:
    return t.raise_budget(run_id, body.usd)


@router.post("/events", response_model=EventReceipt, summary="Send an event")
def send_event(body: SendEvent, t: TetherDep, _: MaySendEvent) -> EventReceipt:
    return t.send_event(body.name, body.data, run=body.run)
