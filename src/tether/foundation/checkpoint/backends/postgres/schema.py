"""The checkpoint's tables in PostgreSQL: the migrations that build them.

`tether_schema` holds one version per component, so other interfaces' backends can share the
table. `migrate` runs at start under an advisory lock (several workers may start at once) and
refuses a schema written by a newer tether rather than guessing what it means.
"""

from __future__ import annotations

import logging
from typing import Any

from psycopg import Connection, sql

from tether.errors import ConfigurationError, SchemaVersionError

log = logging.getLogger("tether.checkpoint.postgres")

_V1 = """
CREATE TABLE runs (
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
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    wake_at DOUBLE PRECISION,
    lease_token TEXT,
    lease_owner TEXT,
    lease_expires_at DOUBLE PRECISION,
    cancel_requested BOOLEAN NOT NULL DEFAULT false,
    claims INTEGER NOT NULL DEFAULT 0,
    event_horizon BIGINT NOT NULL DEFAULT 0,
    meta TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX runs_by_status ON runs (status, wake_at);
CREATE INDEX runs_by_parent ON runs (parent_id);
CREATE INDEX runs_by_created ON runs (created_at);
CREATE TABLE journal (
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
    started_at DOUBLE PRECISION NOT NULL,
    finished_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (run_id, step_id, attempt)
);
CREATE TABLE waits (
    run_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    deadline DOUBLE PRECISION,
    event TEXT,
    match TEXT NOT NULL DEFAULT '{}',
    child_id TEXT,
    PRIMARY KEY (run_id, step_id)
);
CREATE INDEX waits_by_event ON waits (event);
CREATE TABLE events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL,
    data TEXT NOT NULL,
    run_id TEXT,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX events_by_name ON events (name, id);
"""
_V2 = """
CREATE TABLE schedules (
    name TEXT PRIMARY KEY,
    cron TEXT NOT NULL,
    workflow TEXT NOT NULL,
    input TEXT NOT NULL,
    catchup TEXT NOT NULL,
    next_at DOUBLE PRECISION NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
"""
_V3 = """
CREATE TABLE IF NOT EXISTS streams (
    run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    seq BIGINT NOT NULL,
    value TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    written_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (run_id, key, seq)
);
"""
# IF NOT EXISTS: a schema moved back to an older version number keeps these tables.
_V4 = """
CREATE TABLE IF NOT EXISTS thread_checkpoints (
    thread_id TEXT NOT NULL,
    ns TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    parent_id TEXT,
    graph TEXT NOT NULL,
    type TEXT NOT NULL,
    checkpoint BYTEA NOT NULL,
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
    value BYTEA NOT NULL,
    task_path TEXT NOT NULL,
    PRIMARY KEY (thread_id, ns, checkpoint_id, task_id, idx)
);
"""
# The runs list pages by (created_at, id), filtered by status or workflow (the index on
# created_at alone left PostgreSQL sorting ties); and the workers' hosted versions, which
# decide what is stranded.
_V5 = """
DROP INDEX IF EXISTS runs_by_created;
CREATE INDEX runs_by_created ON runs (created_at, id);
CREATE INDEX IF NOT EXISTS runs_by_status_created ON runs (status, created_at, id);
CREATE INDEX IF NOT EXISTS runs_by_workflow_created ON runs (workflow, created_at, id);
CREATE TABLE IF NOT EXISTS worker_hosts (
    owner TEXT NOT NULL,
    workflow TEXT NOT NULL,
    version TEXT NOT NULL,
    pattern TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (owner, workflow, version, pattern)
);
CREATE INDEX IF NOT EXISTS worker_hosts_by_workflow ON worker_hosts (workflow, expires_at);
"""
# Thread values stored once by content (a message of a long conversation, however many
# checkpoints hold it); checkpoints and writes list the blobs they refer to, for the sweep.
_V6 = """
CREATE TABLE IF NOT EXISTS thread_blobs (
    hash TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    value BYTEA NOT NULL,
    refs TEXT NOT NULL
);
ALTER TABLE thread_checkpoints ADD COLUMN IF NOT EXISTS refs TEXT NOT NULL DEFAULT '';
ALTER TABLE thread_writes ADD COLUMN IF NOT EXISTS refs TEXT NOT NULL DEFAULT '';
"""
# Queues: a run's queue, concurrency key and priority; started_at (its first claim) counts
# the starts a queue's rate limit allows. Debounce and throttle: start_at, the time a pending
# run may be claimed from, and the keys its start was folded or spaced by. A model call's
# streamed tokens carry its step id, so a restarted attempt knows to mark the restart.
_V7 = """
ALTER TABLE runs ADD COLUMN IF NOT EXISTS queue TEXT;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS queue_key TEXT;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS started_at DOUBLE PRECISION;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS start_at DOUBLE PRECISION;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS debounce_key TEXT;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS throttle_key TEXT;
CREATE INDEX IF NOT EXISTS runs_by_queue ON runs (queue, status) WHERE queue IS NOT NULL;
CREATE INDEX IF NOT EXISTS runs_by_debounce ON runs (debounce_key, status)
    WHERE debounce_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS runs_by_throttle ON runs (throttle_key, start_at)
    WHERE throttle_key IS NOT NULL;
ALTER TABLE streams ADD COLUMN IF NOT EXISTS step_id TEXT;
"""


def _id_key(column: str) -> str:
    """checkpoint/thread_ids.py's `id_key` in SQL, for the rows already stored (a text column
    holds no NUL, so none ends in one)."""
    uuid = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
    return (
        f"{column} TYPE BYTEA USING CASE WHEN {column} ~ '{uuid}' "
        f"THEN decode(replace({column}, '-', ''), 'hex') "
        f"WHEN octet_length({column}) = 16 THEN convert_to({column}, 'UTF8') || '\\x00'::bytea "
        f"ELSE convert_to({column}, 'UTF8') END"
    )


_HASH = "[A-Za-z0-9_-]{20}"  # a blob hash in the LangGraph saver's form: 15 bytes as base64url


def _hash_key(column: str) -> str:
    """checkpoint/thread_hashes.py's `hash_key` in SQL."""
    return (
        f"{column} TYPE BYTEA USING CASE WHEN {column} ~ '^{_HASH}$' "
        f"THEN decode(translate({column}, '-_', '+/'), 'base64') "
        f"WHEN octet_length({column}) = 15 THEN convert_to({column}, 'UTF8') || '\\x00'::bytea "
        f"ELSE convert_to({column}, 'UTF8') END"
    )


def _refs_key(table: str) -> str:
    """checkpoint/thread_hashes.py's `refs_key` in SQL (refs are joined by single spaces)."""
    return (
        f"ALTER TABLE {table} ALTER COLUMN refs DROP DEFAULT, ALTER COLUMN refs TYPE BYTEA "
        f"USING CASE WHEN refs ~ '^({_HASH}( |$))*$' "
        "THEN decode(translate(replace(refs, ' ', ''), '-_', '+/'), 'base64') "
        "WHEN octet_length(refs) % 15 = 0 THEN convert_to(refs || ' ', 'UTF8') "
        "ELSE convert_to(refs, 'UTF8') END"
    )


# Thread checkpoint and task ids as bytes: a uuid's 16, not its 36 characters of text; blob
# hashes and refs too (once: a schema moved back to an older version number has them as bytes
# already)
_V8 = f"""
DO $$ BEGIN
IF (SELECT data_type FROM information_schema.columns WHERE table_schema = current_schema()
    AND table_name = 'thread_checkpoints' AND column_name = 'checkpoint_id') = 'text' THEN
ALTER TABLE thread_checkpoints ALTER COLUMN {_id_key("checkpoint_id")},
    ALTER COLUMN {_id_key("parent_id")};
ALTER TABLE thread_writes ALTER COLUMN {_id_key("checkpoint_id")},
    ALTER COLUMN {_id_key("task_id")};
END IF;
IF (SELECT data_type FROM information_schema.columns WHERE table_schema = current_schema()
    AND table_name = 'thread_blobs' AND column_name = 'hash') = 'text' THEN
ALTER TABLE thread_blobs ALTER COLUMN {_hash_key("hash")};
{_refs_key("thread_blobs")};
{_refs_key("thread_checkpoints")}, ALTER COLUMN refs SET DEFAULT '';
{_refs_key("thread_writes")}, ALTER COLUMN refs SET DEFAULT '';
END IF;
END $$;
"""
# Forward migrations: index i takes the schema from version i to i + 1. Append, never edit.
MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4, _V5, _V6, _V7, _V8)
SCHEMA_VERSION = len(MIGRATIONS)
COMPONENT = "checkpoint"


def migrate(c: Connection[Any], schema: str | None, where: str) -> str:
    """Bring the schema (created if named and missing) up to SCHEMA_VERSION; return its name.
    `where` names the database in messages (the DSN without its password)."""
    with c.transaction():
        c.execute("SELECT pg_advisory_xact_lock(hashtext('tether_schema'))")
        if schema is not None:
            c.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            c.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
        row = c.execute("SELECT current_schema()").fetchone()
        if row is None or row[0] is None:
            raise ConfigurationError(
                f"no schema to create tether's tables in at {where}: "
                "set TETHER_CHECKPOINT_SCHEMA or fix the search_path"
            )
        c.execute(
            "CREATE TABLE IF NOT EXISTS tether_schema "
            "(component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
        )
        got = c.execute(
            "SELECT version FROM tether_schema WHERE component = %s", (COMPONENT,)
        ).fetchone()
        version = got[0] if got else 0
        if version > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"PostgreSQL at {where} (schema {row[0]}) has checkpoint schema version "
                f"{version}; this tether understands up to {SCHEMA_VERSION}: upgrade tether"
            )
        for migration in MIGRATIONS[version:]:
            c.execute(migration)
        if version < SCHEMA_VERSION:
            c.execute(
                "INSERT INTO tether_schema (component, version) VALUES (%s, %s) "
                "ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version",
                (COMPONENT, SCHEMA_VERSION),
            )
            log.info("checkpoint schema %s migrated %d -> %d", row[0], version, SCHEMA_VERSION)
        return str(row[0])
