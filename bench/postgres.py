"""The PostgreSQL server every PostgreSQL system shares, one fresh database per measurement.

Each measurement drops and recreates its own database (`bench_<family>_<harness pid>`), so no
system reads another's tables or a previous repetition's rows, and two harnesses sharing the
server (several engineers on one machine) never drop each other's databases. Only the
harness's admin connection lives here; the systems connect with their own drivers.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")

# libpq reads PGOPTIONS for every connection any driver opens, so "fsync off" is applied the
# same way to tether, the peers and the floor: commits stop waiting for the WAL flush.
NOSYNC_PGOPTIONS = "-c synchronous_commit=off"


def url_for(database: str) -> str:
    """The admin URL pointed at another database on the same server."""
    parts = urlsplit(ADMIN_URL)
    return urlunsplit(parts._replace(path=f"/{database}"))


def fresh_database(database: str) -> str:
    """Drop and recreate `database`; returns its URL."""
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{database}"')
    return url_for(database)


def drop_databases(harness_pid: int) -> None:
    """Drop the databases one harness's measurements made."""
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s",
            (f"bench\\_%\\_{harness_pid}",),
        ).fetchall()
        for (name,) in rows:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_version() -> str | None:
    """`server_version` of the server, or None when it cannot be reached."""
    try:
        import psycopg

        with psycopg.connect(ADMIN_URL, connect_timeout=3) as conn:
            row = conn.execute("SHOW server_version").fetchone()
    except Exception:
        return None
    return str(row[0]) if row else None
