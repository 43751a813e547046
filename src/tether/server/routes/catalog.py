"""`/api/schedules`, `/api/workflows`, `/api/queues`, `/api/costs` and `/api/triggers`: what
runs, when, how many at once, what it cost, and which of the seeds' decisions its rows say to
revisit."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, status

from tether.client import Tether
from tether.errors import InvalidInput
from tether.foundation.checkpoint.contract import Schedule
from tether.foundation.cost.contract import DailyCost
from tether.server.access import MaySchedule, Reader, TetherDep
from tether.server.errors import RESPONSES, ApiError
from tether.server.models import AddSchedule, QueueView, WorkflowCost, WorkflowVersions
from tether.server.paging import RunQuery, page
from tether.triggers import Trigger, measure, parse_window

router = APIRouter(prefix="/api", tags=["catalog"], responses=RESPONSES)
MAX_DAYS = 366


@router.get("/schedules", response_model=list[Schedule], summary="Every schedule, by name")
def list_schedules(t: TetherDep, _: Reader) -> list[Schedule]:
    return t.schedules()


@router.post(
    "/schedules",
    response_model=Schedule,
    status_code=status.HTTP_201_CREATED,
    summary="Add (or replace) a schedule",
)
def add_schedule(body: AddSchedule, t: TetherDep, _: MaySchedule) -> Schedule:
    return t.add_schedule(body.name, body.cron, body.workflow, body.input, body.catchup)


@router.delete(
    "/schedules/{name}", status_code=status.HTTP_204_NO_CONTENT, summary="Remove a schedule"
)
def remove_schedule(name: str, t: TetherDep, _: MaySchedule) -> None:
    try:
        t.remove_schedule(name)
    except InvalidInput:
        raise ApiError(404, "not_found", f"no schedule named {name!r}") from None


def workflow_versions(t: Tether) -> list[WorkflowVersions]:
    versions: dict[str, list[str]] = {}
    for wid in t.registry.ids():
        name, _, version = wid.partition("@")
        versions.setdefault(name, []).append(version)
    stranded: dict[str, int] = {}
    for run in page(t, RunQuery(stranded=True), 10_000)[0]:
        stranded[run.workflow] = stranded.get(run.workflow, 0) + 1
    names = sorted(set(versions) | set(stranded))
    return [
        WorkflowVersions(
            name=n,
            versions=sorted(versions.get(n, []), key=_semver, reverse=True),
            stranded=stranded.get(n, 0),
        )
        for n in names
    ]


@router.get(
    "/workflows",
    response_model=list[WorkflowVersions],
    summary="Workflows with their registered versions and stranded runs",
)
def list_workflows(t: TetherDep, _: Reader) -> list[WorkflowVersions]:
    return workflow_versions(t)


def queue_views(t: Tether) -> list[QueueView]:
    now = time.time()
    return [
        QueueView(
            name=q.name,
            concurrency=q.concurrency,
            per_key=q.per_key,
            starts=q.starts,
            per=q.per,
            running=s.running,
            waiting=s.waiting,
            oldest_wait_seconds=None if s.oldest_wait is None else now - s.oldest_wait,
        )
        for q, s in t.queues()
    ]


@router.get(
    "/queues",
    response_model=list[QueueView],
    summary="The declared queues: limits, running, waiting, oldest wait (as `tether queues`)",
)
def list_queues(t: TetherDep, _: Reader) -> list[QueueView]:
    return queue_views(t)


@router.get(
    "/costs", response_model=list[WorkflowCost], summary="All-time model cost per name@version"
)
def costs(t: TetherDep, _: Reader) -> list[WorkflowCost]:
    totals = t.workflow_costs(t.registry.ids())
    return [WorkflowCost(workflow=wid, cost=total) for wid, total in totals.items()]


@router.get(
    "/costs/daily",
    response_model=list[DailyCost],
    summary="Model cost per name@version per UTC day, newest day first",
)
def daily_costs(
    t: TetherDep, _: Reader, days: Annotated[int, Query(ge=1, le=MAX_DAYS)] = 30
) -> list[DailyCost]:
    return daily(t, days)


def daily(t: Tether, days: int) -> list[DailyCost]:
    """The last `days` UTC days, today included, from I11's own rows (each carries its
    workflow id, so no join reaches into I2, which may be another database)."""
    since = datetime.now(UTC).date() - timedelta(days=days - 1)
    return t.foundations.cost.store.daily_totals(since)


@router.get(
    "/triggers",
    response_model=list[Trigger],
    summary="The decision triggers D1-D10 measured over a window (as `tether triggers`)",
)
def decision_triggers(t: TetherDep, _: Reader, since: str = "30d") -> list[Trigger]:
    return measure(t, parse_window(since, "since"))


def _semver(version: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else 0 for p in version.split("."))
