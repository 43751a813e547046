"""The runs list a page at a time: filters the checkpointer lacks, and an opaque cursor.

`Checkpointer.list_runs` filters by status and workflow name, newest first, and stops at a
limit; it has no version, time range or cursor (its backends are being rewritten, so this
composes it rather than widen the contract). A page asks for a few more rows than it shows and
widens the window fourfold until the page is full or the table is exhausted, so a first page
reads `limit + 1` rows when nothing else is filtered out.

The cursor is the last row's (created_at, id), the same order the backends sort by, so a run
created while a person pages shows up on the first page, never twice.
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

    def keeps(self, t: Tether, run: RunRecord) -> bool:
        return (
            (self.version is None or run.version == self.version)
            and (self.created_after is None or run.created_at >= self.created_after)
            and (self.created_before is None or run.created_at < self.created_before)
            and (
                not self.stranded
                or (
                    run.status not in TERMINAL
                    and t.registry.for_run(run.workflow, run.version) is None
                )
            )
        )


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
    after = decode_cursor(cursor) if cursor else None
    statuses = query.statuses
    if query.stranded:
        statuses = [s for s in (statuses or list(RunStatus)) if s not in TERMINAL]
    window = limit + 1
    while True:
        rows = t.checkpointer.list_runs(
            RunFilter(statuses=statuses, workflow=query.workflow, limit=window)
        )
        kept = [
            r for r in rows if (after is None or (r.created_at, r.id) < after) and query.keeps(t, r)
        ]
        if len(kept) > limit or len(rows) < window:
            break
        window *= 4
    shown = kept[:limit]
    return shown, encode_cursor(shown[-1]) if len(kept) > limit else None
