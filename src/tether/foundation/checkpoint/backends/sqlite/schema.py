"""The SQLite layout of I2: tables and forward migrations (PRAGMA user_version)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tether.errors import SchemaVersionError
from tether.foundation.checkpoint.thread_hashes import hash_key, refs_key
from tether.foundation.checkpoint.thread_ids import id_key

SCHEMA_VERSION = 8

SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    workflow TEXT NOT NULL,
    version TEXT NOT NULL,
    status TEXT NOT NULL,
    input TEXT NOT NULL,
    output TEXT,
    error TEXT,
    failed_step TEXT,
    key TEXT UNIQUE,
    parent_id TEXT,
    parent_step TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    wake_at REAL,
    lease_token TEXT,
    lease_owner TEXT,
    lease_expires_at REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    claims INTEGER NOT NULL DEFAULT 0,
    event_horizon INTEGER NOT NULL DEFAULT 0,
    meta TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status, wake_at);
CREATE INDEX IF NOT EXISTS runs_by_parent ON runs (parent_id);
CREATE TABLE IF NOT EXISTS journal (
    run_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    value TEXT,
    error TEXT,
    input TEXT,
    ref TEXT,
    started_at REAL NOT NULL,
    finished_at REAL NOT NULL,
    PRIMARY KEY (run_id, step_id, attempt)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS waits (
    run_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    deadline REAL,
    event TEXT,
    match TEXT NOT NULL DEFAULT '{}',
    child_id TEXT,
    PRIMARY KEY (run_id, step_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS waits_by_event ON waits (event);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    data TEXT NOT NULL,
    run_id TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_name ON events (name, id);
"""

# Forward migrations: MIGRATIONS[v] takes a database at version v to v + 1.
MIGRATIONS = {
    1: """
CREATE TABLE IF NOT EXISTS schedules (
    name TEXT PRIMARY KEY,
    cron TEXT NOT NULL,
    workflow TEXT NOT NULL,
    input TEXT NOT NULL,
    catchup TEXT NOT NULL,
    next_at REAL NOT NULL,
    created_at REAL NOT NULL
);
""",
    2: """
CREATE TABLE IF NOT EXISTS streams (
    run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    seq INTEGER NOT NULL,
    value TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    written_at REAL NOT NULL,
    PRIMARY KEY (run_id, key, seq)
) WITHOUT ROWID;
""",
    3: """
CREATE TABLE IF NOT EXISTS thread_checkpoints (
    thread_id TEXT NOT NULL,
    ns TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    parent_id TEXT,
    graph TEXT NOT NULL,
    type TEXT NOT NULL,
    checkpoint BLOB NOT NULL,
    metadata TEXT NOT NULL,
    PRIMARY KEY (thread_id, ns, checkpoint_id)
);
CREATE TABLE IF NOT EXISTS thread_writes (
    thread_id TEXT NOT NULL,
    ns TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    channel TEXT NOT NULL,
    type TEXT NOT NULL,
    value BLOB NOT NULL,
    task_path TEXT NOT NULL,
    PRIMARY KEY (thread_id, ns, checkpoint_id, task_id, idx)
);
""",
    # The runs list pages by (created_at, id), filtered by status or workflow; and the
    # workers' hosted versions, which decide what is stranded.
    4: """
CREATE INDEX IF NOT EXISTS runs_by_created ON runs (created_at, id);
CREATE INDEX IF NOT EXISTS runs_by_status_created ON runs (status, created_at, id);
CREATE INDEX IF NOT EXISTS runs_by_workflow_created ON runs (workflow, created_at, id);
CREATE TABLE IF NOT EXISTS worker_hosts (
    owner TEXT NOT NULL,
    workflow TEXT NOT NULL,
    version TEXT NOT NULL,
    pattern TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (owner, workflow, version, pattern)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS worker_hosts_by_workflow ON worker_hosts (workflow, expires_at);
""",
    # thread values stored once by content; checkpoints and writes list the blobs they use
    5: """
CREATE TABLE IF NOT EXISTS thread_blobs (
    hash TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    value BLOB NOT NULL,
    refs TEXT NOT NULL
) WITHOUT ROWID;
ALTER TABLE thread_checkpoints ADD COLUMN refs TEXT NOT NULL DEFAULT '';
ALTER TABLE thread_writes ADD COLUMN refs TEXT NOT NULL DEFAULT '';
""",
    # Queues (queue, key, priority; started_at counts a rate limit's starts), debounce and
    # throttle (start_at, the keys a start was folded or spaced by), and the step a model
    # call's streamed tokens belong to.
    6: """
ALTER TABLE runs ADD COLUMN queue TEXT;
ALTER TABLE runs ADD COLUMN queue_key TEXT;
ALTER TABLE runs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN started_at REAL;
ALTER TABLE runs ADD COLUMN start_at REAL;
ALTER TABLE runs ADD COLUMN debounce_key TEXT;
ALTER TABLE runs ADD COLUMN throttle_key TEXT;
CREATE INDEX IF NOT EXISTS runs_by_queue ON runs (queue, status) WHERE queue IS NOT NULL;
CREATE INDEX IF NOT EXISTS runs_by_debounce ON runs (debounce_key, status)
    WHERE debounce_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS runs_by_throttle ON runs (throttle_key, start_at)
    WHERE throttle_key IS NOT NULL;
ALTER TABLE streams ADD COLUMN step_id TEXT;
""",
    # thread checkpoint and task ids as bytes (checkpoint/thread_ids.py): a uuid's 16, not its
    # 36 characters of text; blob hashes and refs too (thread_hashes.py)
    7: """
UPDATE thread_checkpoints SET checkpoint_id = tether_id_key(checkpoint_id),
    parent_id = tether_id_key(parent_id), refs = tether_refs_key(refs);
UPDATE thread_writes SET checkpoint_id = tether_id_key(checkpoint_id),
    task_id = tether_id_key(task_id), refs = tether_refs_key(refs);
UPDATE thread_blobs SET hash = tether_hash_key(hash), refs = tether_refs_key(refs);
""",
}


def _id_key(stored: str | bytes | None) -> bytes | None:
    """An id as migration 7 finds it: text becomes its key; bytes (a file moved back to an
    older version) and NULL stay."""
    return id_key(stored) if isinstance(stored, str) else stored


def _hash_key(stored: str | bytes) -> bytes:
    """A blob hash as migration 7 finds it: text becomes its key, bytes stay."""
    return hash_key(stored) if isinstance(stored, str) else stored


def _refs_key(stored: str | bytes) -> bytes:
    """A row's refs as migration 7 finds them: space-separated text becomes their key."""
    return refs_key(stored.split()) if isinstance(stored, str) else stored


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the file's schema up to SCHEMA_VERSION, or refuse a newer one."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"database {path} has schema version {version}; this tether understands "
            f"up to {SCHEMA_VERSION}: upgrade tether"
        )
    conn.create_function("tether_id_key", 1, _id_key, deterministic=True)
    conn.create_function("tether_hash_key", 1, _hash_key, deterministic=True)
    conn.create_function("tether_refs_key", 1, _refs_key, deterministic=True)
    if version == 0:
        conn.executescript(f"BEGIN IMMEDIATE; {SCHEMA_V1} PRAGMA user_version=1; COMMIT;")
        version = 1
    while version < SCHEMA_VERSION:
        conn.executescript(
            f"BEGIN IMMEDIATE; {MIGRATIONS[version]} PRAGMA user_version={version + 1}; COMMIT;"
        )
        version += 1
