"""Secrets never reach a store: every journal write and span of a run passes the I7 redactor.

A value fetched through I7 (`ctx.secret`, a provider key) is registered with the process-wide
redactor the moment it exists; from then on this wrapper strikes it from journal entries, run
outputs and errors before the checkpointer sees them. With no secret registered the redactor
is a no-op, so the hot path pays one attribute check.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol

from tether.foundation.checkpoint.contract import (
    Checkpointer,
    JournalEntry,
    NewRun,
    RunRecord,
    Wait,
)
from tether.foundation.secrets.redaction import REDACTOR, redact


class Appender(Protocol):
    """What a worker's group commit takes over from the checkpointer."""

    def append(self, run_id: str, token: str, entries: Sequence[JournalEntry]) -> None: ...

    def complete(
        self, run_id: str, token: str, output: str, entries: Sequence[JournalEntry] = ()
    ) -> None: ...


def _clean(text: str | None) -> str | None:
    return None if text is None else redact(text)


def clean_entries(entries: Sequence[JournalEntry]) -> Sequence[JournalEntry]:
    if not REDACTOR.active:
        return entries
    return [
        replace(e, value=_clean(e.value), input=_clean(e.input), error=_clean(e.error))
        for e in entries
    ]


def clean_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    if not REDACTOR.active:
        return attributes
    return {k: redact(v) if isinstance(v, str) else v for k, v in attributes.items()}


class RedactingCheckpointer:
    """The part of a Checkpointer an execution calls, with secrets struck out of the entries,
    output, error and evidence it writes; `create_run` (a child), `release` and `finish_cancel`
    pass through as they are. `appends`, if given, takes the appends and completions instead
    (a worker's group commit)."""

    def __init__(self, inner: Checkpointer, appends: Appender | None = None) -> None:
        self._inner = inner
        self._append = inner.append if appends is None else appends.append
        self._complete = inner.complete if appends is None else appends.complete

    def create_run(self, new: NewRun) -> tuple[RunRecord, bool]:
        return self._inner.create_run(new)

    def append(self, run_id: str, token: str, entries: Sequence[JournalEntry]) -> None:
        self._append(run_id, token, clean_entries(entries))

    def append_stream(
        self, run_id: str, token: str, key: str, value: str, entry: JournalEntry
    ) -> int:
        return self._inner.append_stream(run_id, token, key, redact(value), entry)

    def append_tokens(
        self, run_id: str, token: str, key: str, step_id: str, values: Sequence[str], first: bool
    ) -> None:
        clean = [redact(v) for v in values]
        self._inner.append_tokens(run_id, token, key, step_id, clean, first)

    def park(
        self, run_id: str, token: str, waits: Sequence[Wait], entries: Sequence[JournalEntry] = ()
    ) -> list[JournalEntry]:
        return self._inner.park(run_id, token, waits, clean_entries(entries))

    def complete(
        self, run_id: str, token: str, output: str, entries: Sequence[JournalEntry] = ()
    ) -> None:
        self._complete(run_id, token, redact(output), clean_entries(entries))

    def fail(
        self,
        run_id: str,
        token: str,
        error: str,
        failed_step: str | None,
        entries: Sequence[JournalEntry] = (),
    ) -> None:
        self._inner.fail(run_id, token, redact(error), failed_step, clean_entries(entries))

    def needs_attention(self, run_id: str, token: str, step_id: str, evidence: str) -> None:
        self._inner.needs_attention(run_id, token, step_id, redact(evidence))

    def release(self, run_id: str, token: str) -> None:
        self._inner.release(run_id, token)

    def finish_cancel(self, run_id: str, token: str) -> None:
        self._inner.finish_cancel(run_id, token)
