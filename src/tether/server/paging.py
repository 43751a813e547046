"""The runs list a page at a time: the filters a person picks, and an opaque cursor.

One query a page: `Checkpointer.list_runs` with the cursor as `before`, asking for one run more
than the page shows to know whether another page follows. Newest first by (created_at, id),
the order of I2's index, so a run created while a person pages shows up on the first page,
never twice, and no page counts or skips rows.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from tether.client import Tether
from tether.errors import InvalidInput
from tether.foundation.checkpoint.contract import TERMINAL, RunFilter, RunRecord, RunStatus

MAX_PAGE = 500


@dataclass(frozen=True)
class RunQuery:
    workflow: str | None = None
    version: str | None = None
    statuses: list[RunStatus] = field(default_factory=list)
    stranded: bool = False
    created_after: float | None = None
    created_before: float | None = None


def encode_cursor(run: RunRecord) -> str:
    return base64.urlsafe_b64encode(f"{run.created_at!r}|{run.id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        created, _, run_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        return float(created), run_id
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput(
            "cursor", [{"loc": ["query", "cursor"], "msg": "not a cursor this API returned"}]
        ) from None


def page(
    t: Tether, query: RunQuery, limit: int, cursor: str | None = None
) -> tuple[list[RunRecord], str | None]:
    """Up to `limit` runs after the cursor, newest first, and the cursor of the next page."""
    rows = t.checkpointer.list_runs(
        RunFilter(
            statuses=query.statuses,
            workflow=query.workflow,
            version=query.version,
            created_after=query.created_after,
            created_before=query.created_before,
            before=decode_cursor(cursor) if cursor else None,
            stranded=query.stranded,
            limit=limit + 1,
        )
    )
    shown = rows[:limit]
    return shown, encode_cursor(shown[-1]) if len(rows) > limit else None


@dataclass(frozen=True)
class Standing:
    """Whether a run is stranded, and the versions workers recorded that could resume it
    (none of them live, if it is): what a person needs to bring it back."""

    stranded: bool
    versions: list[str]


def standing(t: Tether, runs: list[RunRecord]) -> dict[str, Standing]:
    """From the workers' heartbeat rows in I2, in one query; not from this process's registry."""
    found = t.checkpointer.resumers([r.id for r in runs])
    return {
        r.id: Standing(
            stranded=r.status not in TERMINAL and not any(x.live for x in found[r.id]),
            versions=[x.version for x in found[r.id]],
        )
        for r in runs
    }
