"""Server-sent events: the run list's changes, and one run's status and journal as it grows.

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

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from tether.foundation.checkpoint.contract import TERMINAL, RunStatus
from tether.server.access import Reader, state_of
from tether.server.errors import RESPONSES
from tether.server.paging import RunQuery, page

router = APIRouter(prefix="/api/stream", tags=["streams"], responses=RESPONSES)
KEEPALIVE_SECONDS = 15.0
_SSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "A stream of events"}
}


def _event(name: str, data: Any) -> str:
    return f"event: {name}\ndata: {json.dumps(data, default=str)}\n\n"


@router.get("/runs", response_class=StreamingResponse, responses=_SSE, summary="Run list changes")
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
    "/runs/{run_id}", response_class=StreamingResponse, responses=_SSE, summary="One run's changes"
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


def _streaming(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
