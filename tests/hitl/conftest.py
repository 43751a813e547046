"""A Tether over a fresh data dir with the HITL workflows registered."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.server.conftest import served  # noqa: F401  (the API receipts' served app)
from tether import Tether


@pytest.fixture
def hitl(make_tether: Callable[..., Tether]) -> Iterator[Callable[..., Tether]]:
    def make(**overrides: Any) -> Tether:
        return make_tether(**{"workflows": ["tests.hitl.flows"], **overrides})

    yield make
