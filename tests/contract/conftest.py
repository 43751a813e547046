"""A fresh I2 checkpointer per test, for each backend the contract suite runs over."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.postgres.server import fresh_schema
from tether.foundation.checkpoint.backends.sqlite import SqliteCheckpointer
from tether.foundation.checkpoint.contract import Checkpointer
from tether.foundation.checkpoint.memory import MemoryCheckpointer


@pytest.fixture
def pg_schema() -> Iterator[tuple[str, str]]:
    with fresh_schema("cp") as found:
        yield found


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def checkpointer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Checkpointer]:
    cp: Checkpointer
    if request.param == "memory":
        cp = MemoryCheckpointer()
    elif request.param == "sqlite":
        cp = SqliteCheckpointer(f"sqlite:///{tmp_path / 'tether.db'}")
    else:
        from tether.foundation.checkpoint.backends.postgres import PostgresCheckpointer

        url, schema = request.getfixturevalue("pg_schema")
        cp = PostgresCheckpointer(url, schema=schema)
    yield cp
    cp.close()
