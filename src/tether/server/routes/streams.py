"""Server-sent events: the run list's changes, one run's status and journal as it grows, and
the values of one of a run's named streams (`ctx.stream`).

Every stream waits on the process's one `ChangeWatcher` and re-reads only when it reports a
change, then sends only what differs from what this stream already sent. A stream sends a
comment every `KEEPALIVE_SECONDS` so proxies keep it open; a client that goes away ends its
generator (Starlette cancels it) and nothing else.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from tether.foundation.checkpoint.contract import TERMINAL, RunRecord, RunStatus, StreamItem
from tether.server.access import Reader, state_of
from tether.server.errors import RESPONSES
from tether.server.paging import RunQuery, page

router = APIRouter(prefix="/api", tags=["streams"], responses=RESPONSES)
KEEPALIVE_SECONDS = 15.0
_SSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "A stream of events"}
}


def _event(name: str, data: Any) -> str:
    return f"event: {name}\ndata: {json.dumps(data, default=str)}\n\n"


@router.get(
    "/stream/runs", response_class=StreamingResponse, responses=_SSE, summary="Run list changes"
)
async def runs_stream(
    request: Request,
    _: Reader,
    workflow: str | None = None,
    run_status: Annotated[list[RunStatus] | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> StreamingResponse:
    """`runs` events: the first page (id, workflow@version, status, updated) whenever it
    changes."""
    state = state_of(request)
    query = RunQuery(workflow=workflow, statuses=run_status or [])

    async def events() -> AsyncIterator[str]:
        seen, last = -1, None
        while True:
            generation = await state.watcher.wait(seen, KEEPALIVE_SECONDS)
            if generation == seen:
                yield ": keep-alive\n\n"
                continue
            seen = generation
            runs, _ = await run_in_threadpool(page, state.tether, query, limit)
            rows = [
                {
                    "id": r.id,
                    "workflow": r.workflow_id,
                    "status": r.status.value,
                    "updated_at": r.updated_at,
                }
                for r in runs
            ]
            if rows != last:
                last = rows
                yield _event("runs", rows)

    return _streaming(events())


@router.get(
    "/stream/runs/{run_id}",
    response_class=StreamingResponse,
    responses=_SSE,
    summary="One run's changes",
)
async def run_stream(run_id: str, request: Request, _: Reader) -> StreamingResponse:
    """`run` events when the run's status changes, `step` events for each journal entry
    written; the stream ends after the run finishes."""
    state = state_of(request)
    t = state.tether
    await run_in_threadpool(t.status, run_id)  # 404 before the stream opens

    async def events() -> AsyncIterator[str]:
        seen, sent_status = -1, None
        sent: set[tuple[str, int]] = set()
        while True:
            generation = await state.watcher.wait(seen, KEEPALIVE_SECONDS)
            if generation == seen:
                yield ": keep-alive\n\n"
                continue
            seen = generation
            run = await run_in_threadpool(t.status, run_id)
            journal = await run_in_threadpool(t.journal, run_id)
            for entry in journal:
                if (entry.step_id, entry.attempt) not in sent:
                    sent.add((entry.step_id, entry.attempt))
                    yield _event("step", asdict(entry))
            if run.status != sent_status:
                sent_status = run.status
                yield _event("run", run.model_dump(mode="json"))
            if run.status in TERMINAL:
                return

    return _streaming(events())


@router.get(
    "/runs/{run_id}/streams/{key}",
    response_class=StreamingResponse,
    responses=_SSE,
    summary="A run's named stream (`ctx.stream`) from an offset, until the run ends",
)
async def values_stream(
    run_id: str,
    key: str,
    request: Request,
    _: Reader,
    offset: Annotated[int, Query(ge=0, description="The first value's offset")] = 0,
    last_event_id: Annotated[int | None, Header(ge=0)] = None,
) -> StreamingResponse:
    """`value` events, each with its offset as the event id, so an `EventSource` that
    reconnects (sending `Last-Event-ID`) goes on after the last value it had; then one `end`
    event with the run's final status once the run has ended and every value is sent."""
    state = state_of(request)
    t = state.tether
    await run_in_threadpool(t.status, run_id)  # 404 before the stream opens
    start = offset if last_event_id is None else last_event_id + 1

    def read(after: int) -> tuple[list[StreamItem], RunRecord]:
        run = t.status(run_id)  # before the read: a run ended then has written everything
        return list(t.stream(run_id, key, after, follow=False)), run

    async def events() -> AsyncIterator[str]:
        seen, after = -1, start
        while True:
            generation = await state.watcher.wait(seen, KEEPALIVE_SECONDS)
            if generation == seen:
                yield ": keep-alive\n\n"
                continue
            seen = generation
            items, run = await run_in_threadpool(read, after)
            for item in items:
                after = item.offset + 1
                data = {"offset": item.offset, "value": json.loads(item.value),
                        "attempt": item.attempt, "written_at": item.written_at}  # fmt: skip
                yield f"id: {item.offset}\n{_event('value', data)}"
            if run.status in TERMINAL:
                yield _event("end", {"status": run.status.value, "next_offset": after})
                return

    return _streaming(events())


def _streaming(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
