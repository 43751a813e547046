"""I1's backends are chosen by configuration only: the store by the tools database URL, the
lanes by `Settings.tools` (test_lane_routing.py: per class and per tool), both through entry
points."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tools import sample_tools as t
from tether.errors import ConfigurationError
from tether.foundation.blobs.files import FileBlobStore
from tether.foundation.tools.backends.bubblewrap import BubblewrapLanes
from tether.foundation.tools.backends.sqlite import SqliteToolResults
from tether.foundation.tools.contract import ToolInvocation
from tether.foundation.tools.local import LocalLanes
from tether.foundation.tools.memory import MemoryToolResults
from tether.foundation.tools.routing import LaneRouter
from tether.foundation.tools.runner import ToolRunner
from tether.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def settings(tmp_path: Path, **kw: object) -> Settings:
    return Settings(data_dir=tmp_path, config_file=tmp_path / "none.toml", **kw)  # type: ignore[arg-type]


async def test_default_configuration_is_sqlite_results_and_local_lanes(tmp_path: Path) -> None:
    runner = ToolRunner.from_settings(settings(tmp_path), FileBlobStore(tmp_path / "blobs"))
    assert isinstance(runner.store, SqliteToolResults)
    assert isinstance(runner.lanes, LaneRouter) and list(runner.lanes.backends) == ["local"]
    assert isinstance(runner.lanes.backends["local"], LocalLanes)
    inv = ToolInvocation(run_id="r", step_id="1", attempt=1, tool=t.add, args={"a": 1})
    assert (await runner.call(inv)).value == 2
    await runner.close()
    assert (tmp_path / "tether.db").exists()


def test_lanes_and_store_switch_by_configuration_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TETHER_TOOLS_DATABASE_URL", "memory:")
    configured = settings(tmp_path, tools="bubblewrap")
    runner = ToolRunner.from_settings(configured, FileBlobStore(tmp_path))
    assert isinstance(runner.store, MemoryToolResults)
    assert isinstance(runner.lanes, LaneRouter)
    assert isinstance(runner.lanes.backend_for(t.add), BubblewrapLanes)


def test_unknown_lane_backend_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="known: bubblewrap, daytona, e2b, local"):
        ToolRunner.from_settings(settings(tmp_path, tools="nope"), FileBlobStore(tmp_path))


def test_unknown_database_scheme_is_a_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TETHER_TOOLS_DATABASE_URL", "mysql://u:secret@h/db")
    with pytest.raises(ConfigurationError, match=r"mysql://u:\*\*\*@h/db") as raised:
        ToolRunner.from_settings(settings(tmp_path), FileBlobStore(tmp_path))
    assert "secret" not in str(raised.value)
