"""A real Phoenix, started once per test session on first use (skipped, saying why, when
scripts/services.sh has not created .venv-phoenix)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.trace.phoenix import PHOENIX, Phoenix


@pytest.fixture(scope="session")
def phoenix() -> Iterator[Phoenix]:
    if not PHOENIX.exists():
        pytest.skip(f"Phoenix is not installed at {PHOENIX}: run scripts/services.sh")
    server = Phoenix()
    yield server
    server.close()
