"""The PostgreSQL server tests run against: 127.0.0.1:5432, database `test`, trust auth.

`TETHER_TEST_POSTGRES` overrides the URL. Each test gets a schema of its own, dropped after, so
tests never see each other's rows. A test skips, printing why, only when no server answers.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

CANDIDATES = (
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql://root@127.0.0.1:5432/test",
)


@functools.cache
def _reach() -> tuple[str | None, str]:
    """The first URL that connects, or None and every failure."""
    explicit = os.environ.get("TETHER_TEST_POSTGRES")
    failures = []
    for url in (explicit,) if explicit else CANDIDATES:
        try:
            with psycopg.connect(url, connect_timeout=3):
                return url, ""
        except psycopg.OperationalError as e:
            failures.append(f"{url}: {' '.join(str(e).split())}")
    return None, "; ".join(failures)


def server_url() -> str:
    """The admin URL, or skip the calling test saying why there is none."""
    url, why = _reach()
    if url is None:
        pytest.skip(f"PostgreSQL unreachable ({why})")
    return url


@contextmanager
def fresh_schema(prefix: str = "t") -> Iterator[tuple[str, str]]:
    """(server URL, a schema name no other test uses); the schema is dropped afterwards."""
    url = server_url()
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        yield url, schema
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
