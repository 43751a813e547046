"""A Tether over a fresh data dir with the HITL workflows registered, on each engine: the
approval receipts hold on Temporal as on the local engine."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.server.conftest import served  # noqa: F401  (the API receipts' served app)
from tether import Tether


@pytest.fixture(
    params=["local", pytest.param("temporal", marks=pytest.mark.temporal)],
)
def hitl(
    request: pytest.FixtureRequest, make_tether: Callable[..., Tether]
) -> Iterator[Callable[..., Tether]]:
    """Tethers of one deployment (on Temporal, one queue prefix: they share the workers)."""
    engine: dict[str, Any] = {}
    if request.param == "temporal":
        engine = {
            "engine": "temporal",
            "temporal_address": request.getfixturevalue("temporal_server"),
            "temporal_queue_prefix": f"t{uuid.uuid4().hex[:12]}",
        }

    def make(**overrides: Any) -> Tether:
        return make_tether(**{"workflows": ["tests.hitl.flows"], **engine, **overrides})

    yield make
