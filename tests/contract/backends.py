"""Which backends the contract suites run over: every one installed in the interface's
entry-point group (`tether.<interface>`), so a new backend is tested by adding its entry point.

Each is built as configuration builds it (`open_backend`, through its `from_settings`) in a
place of its own: a fresh PostgreSQL schema, a fresh Redis key prefix (either skipped, saying
why, when its server does not answer), a fresh bucket on a moto S3 server, else the test's
temporary directory, which holds the data directory and the SQLite file in it. A suite whose
backends must be steered (seeded with secrets, told what to answer) keeps a table of how to
steer each, and fails for a backend it has no entry for rather than skip it unseen.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from unittest.mock import patch

import pytest
from _pytest.mark import ParameterSet

from tests.fakes.guard_servers import REDIS, redis_prefix
from tests.fakes.s3_server import AWS, moto_server
from tests.postgres.server import fresh_schema
from tether.foundation.loader import backend_names, open_backend
from tether.settings import Settings

T = TypeVar("T")

# the backends that need a server, and the marker that selects (or deselects) their tests
SERVERS = {"postgres": pytest.mark.postgres, "redis": pytest.mark.redis}


def installed(interface: str, variants: dict[str, list[str]] | None = None) -> list[ParameterSet]:
    """One pytest parameter per backend in `tether.<interface>`; `variants` runs one backend
    in several settings (vault against OpenBao and against the KV v2 test server)."""
    return [
        pytest.param(variant, marks=SERVERS.get(name, ()), id=variant)
        for name in backend_names(interface)
        for variant in (variants or {}).get(name, [name])
    ]


@contextmanager
def environment(
    name: str, database: str, tmp_path: Path
) -> Iterator[tuple[Settings, dict[str, Any]]]:
    """Settings (and `[<interface>] options`) under which backend `name` keeps its data where no
    other test sees it. `database` is the interface's name in `TETHER_<X>_DATABASE_URL`."""
    if name == "postgres":
        with fresh_schema(database) as (url, schema):
            import psycopg

            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute(f"CREATE SCHEMA {schema}")
            # the schema as the URL's search_path (what every PostgreSQL backend reads), and by
            # name for the checkpointer, which prefers its own setting
            in_schema = f"{url}?options=-csearch_path%3D{schema}"
            yield (
                settings(
                    tmp_path, **{f"{database}_database_url": in_schema}, checkpoint_schema=schema
                ),
                {},
            )
    elif name == "redis":
        with redis_prefix() as prefix:
            yield settings(tmp_path), {"url": REDIS, "prefix": prefix}
    elif name == "s3":
        import boto3

        with moto_server() as endpoint, patch.dict(os.environ, AWS):
            bucket = f"{database}-{uuid.uuid4().hex[:12]}"
            boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
            s3 = {
                f"{database}_s3_url": f"s3://{bucket}/tether",
                f"{database}_s3_endpoint_url": endpoint,
            }
            yield settings(tmp_path, **s3), {}
    else:
        yield settings(tmp_path), {}


@contextmanager
def handles(
    interface: str, name: str, contract: type[T], database: str, tmp_path: Path
) -> Iterator[Callable[[], T]]:
    """Opens backend `name` again and again on the same data, as a second worker or a restart
    would, and closes every handle after. A memory backend's data is the object itself, so
    its handles are that one object."""
    with environment(name, database, tmp_path) as (settings, options):
        opened: list[Any] = []

        def open_again() -> T:
            if name == "memory" and opened:
                return opened[0]
            opened.append(open_backend(interface, name, contract, settings, **options))
            return opened[-1]

        yield open_again
        for handle in opened:
            handle.close()


def settings(tmp_path: Path, **fields: Any) -> Settings:
    """The test's own data directory and SQLite file in it, whatever the environment says."""
    data = tmp_path / "data"
    return Settings(data_dir=data, database_url=f"sqlite:///{data / 'tether.db'}", **fields)
