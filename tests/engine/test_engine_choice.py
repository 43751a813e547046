"""The engine is chosen by settings `engine` (env TETHER_ENGINE) through the one loader, and
the client runs the lifecycle through it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tether import Tether
from tether.errors import BackendNotFound
from tether.foundation.engine.contract import WorkflowEngine


def test_the_default_engine_is_tethers_own_runtime(make_tether: Callable[..., Tether]) -> None:
    t = make_tether()
    assert isinstance(t.engine, WorkflowEngine)
    assert t.engine.name == "local"


def test_the_engine_comes_from_the_environment(
    make_tether: Callable[..., Tether], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TETHER_ENGINE", "nope")
    with pytest.raises(BackendNotFound, match=r"tether\.engine"):
        make_tether()


def test_a_run_started_through_the_client_is_the_engines_record(
    make_tether: Callable[..., Tether],
) -> None:
    t = make_tether()
    run_id = t.start("steps", {"n": 2})
    assert t.engine.status(run_id).id == run_id
    assert t.run(run_id).status.value == "completed"
