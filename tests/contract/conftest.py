"""A fresh I2 checkpointer per test, for each backend installed in `tether.checkpoint`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.contract.backends import environment, installed
from tests.postgres.server import fresh_schema
from tether.foundation.checkpoint.contract import Checkpointer
from tether.foundation.loader import open_backend


@pytest.fixture
def pg_schema() -> Iterator[tuple[str, str]]:
    with fresh_schema("cp") as found:
        yield found


@pytest.fixture(params=installed("checkpoint"))
def checkpointer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Checkpointer]:
    with environment(request.param, "checkpoint", tmp_path) as (settings, options):
        cp = open_backend("checkpoint", request.param, Checkpointer, settings, **options)
        yield cp
        cp.close()
