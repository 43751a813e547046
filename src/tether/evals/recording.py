"""A recording: finished and parked runs exported from any checkpointer into one portable
SQLite file, which the replay gate reads anywhere (CI reads one committed as a test fixture).

It holds what a replay needs and what a reader of a failed replay wants to see: each run's
row, its journal, and I1's row for each tool call it made. The file is self-contained: values
are written resolved (a blob's content, not its address), so it needs no blob store. It is in
a small format of its own (JSON records under a format number), not I2's tables: a recording
exported today is still read after I2's schema moves on, and reading one never migrates or
writes it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from pydantic import TypeAdapter

from tether.client import Tether
from tether.errors import RecordingError
from tether.foundation.checkpoint.contract import (
    EntryKind,
    JournalEntry,
    RunRecord,
    RunStatus,
)
from tether.foundation.tools.results import ToolCallRecord
from tether.runtime.values import Codec

FORMAT = "tether-recording/1"
_ENTRY = TypeAdapter(JournalEntry)
_SCHEMA = """
CREATE TABLE recording (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (id TEXT PRIMARY KEY, workflow TEXT NOT NULL, created_at REAL NOT NULL,
                   record TEXT NOT NULL);
CREATE TABLE journal (run_id TEXT NOT NULL, seq INTEGER NOT NULL, entry TEXT NOT NULL,
                      PRIMARY KEY (run_id, seq));
CREATE TABLE tool_calls (run_id TEXT NOT NULL, step_id TEXT NOT NULL, record TEXT NOT NULL,
                         PRIMARY KEY (run_id, step_id));
"""


@dataclass(frozen=True)
class Exported:
    runs: int
    entries: int
    tool_calls: int


def _resolved(codec: Codec, text: str | None) -> str | None:
    return None if text is None else codec.resolve(text)


def _run(codec: Codec, run: RunRecord) -> RunRecord:
    return run.model_copy(
        update={"input": codec.resolve(run.input), "output": _resolved(codec, run.output)}
    )


def _entry(codec: Codec, entry: JournalEntry) -> str:
    resolved = replace(
        entry, value=_resolved(codec, entry.value), input=_resolved(codec, entry.input)
    )
    return _ENTRY.dump_json(resolved).decode()


def _tool_call(t: Tether, record: ToolCallRecord) -> ToolCallRecord:
    if record.result_ref is None:
        return record
    return record.model_copy(
        update={"result": t.blobs.get(record.result_ref).decode(), "result_ref": None}
    )


def _tool_steps(run: RunRecord, journal: Iterable[JournalEntry]) -> list[str]:
    """Steps with an I1 row: each tool call, and the call a needs_attention run is parked on."""
    steps = dict.fromkeys(e.step_id for e in journal if e.kind is EntryKind.TOOL)
    if run.status is RunStatus.NEEDS_ATTENTION and run.failed_step is not None:
        steps[run.failed_step] = None
    return list(steps)


def export_runs(t: Tether, runs: list[RunRecord], path: Path) -> Exported:
    """Write `runs` (with their journals and tool-call rows) to a new recording at `path`."""
    if path.exists():
        raise RecordingError(f"{path} exists; export writes a new file, so give another path")
    db = sqlite3.connect(path)
    entries = calls = 0
    try:
        with db:
            db.executescript(_SCHEMA)
            db.executemany(
                "INSERT INTO recording VALUES (?, ?)",
                [("format", FORMAT), ("exported_at", str(time.time())),
                 ("source", t.database)],
            )  # fmt: skip
            for run in runs:
                journal = t.journal(run.id)
                db.execute(
                    "INSERT INTO runs VALUES (?, ?, ?, ?)",
                    (run.id, run.workflow, run.created_at,
                     _run(t.codec, run).model_dump_json()),
                )  # fmt: skip
                db.executemany(
                    "INSERT INTO journal VALUES (?, ?, ?)",
                    [(run.id, n, _entry(t.codec, e)) for n, e in enumerate(journal)],
                )  # fmt: skip
                entries += len(journal)
                for step in _tool_steps(run, journal):
                    record = t.foundations.tools.lookup(run.id, step)
                    if record is not None:
                        db.execute(
                            "INSERT INTO tool_calls VALUES (?, ?, ?)",
                            (run.id, step, _tool_call(t, record).model_dump_json()),
                        )
                        calls += 1
        db.execute("VACUUM")  # a fixture committed to git: no free pages in it
    finally:
        db.close()
    return Exported(len(runs), entries, calls)


class Recording:
    """A recording opened read-only: the runs it holds, newest first, and their journals."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise RecordingError(f"no recording at {path}; write one with `tether export FILE`")
        self.path = path
        self.data_dir: Path | None = None  # values are inline
        self._db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            row = self._db.execute("SELECT value FROM recording WHERE key = 'format'").fetchone()
        except sqlite3.DatabaseError as e:
            self._db.close()
            raise RecordingError(f"{path} is not a tether recording ({e})") from e
        if row is None or row[0] != FORMAT:
            self._db.close()
            found = "no format" if row is None else f"format {row[0]!r}"
            raise RecordingError(f"{path} has {found}; this tether reads {FORMAT}")

    def runs(self, last: int, workflow: str | None = None) -> list[RunRecord]:
        where, args = ("", ()) if workflow is None else (" WHERE workflow = ?", (workflow,))
        found = self._db.execute(
            f"SELECT record FROM runs{where} ORDER BY created_at DESC, id DESC LIMIT ?",
            (*args, last),
        )
        return [RunRecord.model_validate_json(r) for (r,) in found]

    def journal(self, run_id: str) -> list[JournalEntry]:
        rows = self._db.execute(
            "SELECT entry FROM journal WHERE run_id = ? ORDER BY seq", (run_id,)
        )
        return [_ENTRY.validate_json(e) for (e,) in rows]

    def tool_call(self, run_id: str, step_id: str) -> ToolCallRecord | None:
        row = self._db.execute(
            "SELECT record FROM tool_calls WHERE run_id = ? AND step_id = ?", (run_id, step_id)
        ).fetchone()
        return None if row is None else ToolCallRecord.model_validate_json(row[0])

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
