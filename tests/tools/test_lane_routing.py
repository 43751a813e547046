"""Lanes per persistence class with per-tool overrides (`[tools.lanes]`, `[tools.overrides]`):
one runner routes each call to its tool's backend, and every mapping is checked when the lanes
are built, which a worker, `tether run --wait` and `tether serve` do before any run starts."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tools import sample_tools as t
from tether.errors import ConfigurationError
from tether.foundation.blobs.files import FileBlobStore
from tether.foundation.tools.backends.bubblewrap import BubblewrapLanes
from tether.foundation.tools.contract import Lane, LaneResult, PersistenceClass, ToolInvocation
from tether.foundation.tools.local import LocalLanes
from tether.foundation.tools.routing import LaneRouter
from tether.foundation.tools.runner import ToolRunner
from tether.settings import Settings, ToolLanes

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tether.toml").write_text("")
    monkeypatch.setenv("TETHER_CONFIG_FILE", str(tmp_path / "tether.toml"))


def from_toml(tmp_path: Path, text: str) -> Settings:
    (tmp_path / "tether.toml").write_text(text)
    return Settings(data_dir=tmp_path / ".tether")


def call(tool: object, step: str) -> ToolInvocation:
    return ToolInvocation(run_id="run-1", step_id=step, attempt=1, tool=tool, args={})  # type: ignore[arg-type]


def test_toml_tables_map_classes_and_tools(tmp_path: Path) -> None:
    settings = from_toml(
        tmp_path,
        """
[tools.lanes]
ephemeral = "e2b"
persistent_session = "daytona"
persistent_workspace = "local"

[tools.overrides]
render_chart = "bubblewrap"
""",
    )
    assert settings.tools == ToolLanes(
        lanes={"ephemeral": "e2b", "persistent_session": "daytona",
               "persistent_workspace": "local"},
        overrides={"render_chart": "bubblewrap"},
    )  # fmt: skip


def test_one_name_is_still_the_lane_for_every_class(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_TOOLS", "bubblewrap")
    assert Settings().tools == ToolLanes(default="bubblewrap")
    monkeypatch.setenv("TETHER_TOOLS", '{"lanes": {"ephemeral": "e2b"}}')  # or the table as JSON
    assert Settings().tools == ToolLanes(lanes={"ephemeral": "e2b"})


def test_variables_use_the_double_underscore_and_leave_the_tools_database_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TETHER_TOOLS__LANES__PERSISTENT_SESSION", "daytona")
    monkeypatch.setenv("TETHER_TOOLS__OVERRIDES__RENDER_CHART", "bubblewrap")
    monkeypatch.setenv("TETHER_TOOLS_DATABASE_URL", "memory:")
    settings = Settings(data_dir=tmp_path)
    assert settings.tools.lanes == {"persistent_session": "daytona"}
    assert settings.tools.overrides == {"render_chart": "bubblewrap"}
    assert settings.tools.default == "local"
    assert settings.database_url_for("tools") == "memory:"


def test_an_unknown_persistence_class_is_one_line_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as raised:
        from_toml(tmp_path, '[tools.lanes]\nephemerall = "e2b"\n')
    message = str(raised.value)
    assert "tools.lanes.ephemerall" in message and "persistent_session" in message
    assert "\n" not in message


async def test_an_override_sends_one_tool_to_another_backend(tmp_path: Path) -> None:
    """`my_uid` runs as nobody under bubblewrap; `add`, of the same class, stays local."""
    settings = from_toml(tmp_path, '[tools.overrides]\nmy_uid = "bubblewrap"\n')
    router = LaneRouter.from_settings(settings)
    assert set(router.backends) == {"local", "bubblewrap"}
    assert isinstance(router.backend_for(t.my_uid), BubblewrapLanes)
    assert type(router.backend_for(t.add)) is LocalLanes
    runner = ToolRunner.from_settings(settings, FileBlobStore(tmp_path / "blobs"))
    try:
        assert (await runner.call(call(t.my_uid, "1"))).value == NOBODY
        assert (await runner.call(call(t.where_am_i, "2"))).value.startswith("/tmp/")
    finally:
        await runner.close()


async def test_a_class_mapping_sends_every_tool_of_the_class(tmp_path: Path) -> None:
    settings = from_toml(tmp_path, '[tools.lanes]\nephemeral = "bubblewrap"\n')
    runner = ToolRunner.from_settings(settings, FileBlobStore(tmp_path / "blobs"))
    try:
        assert (await runner.call(call(t.my_uid, "1"))).value == NOBODY
        session = ToolInvocation(run_id="run-1", step_id="2", attempt=1, tool=t.session_count,
                                 args={"note": "a"})  # fmt: skip
        assert (await runner.call(session)).value["on_disk"] == 1  # its class kept the default
        assert type(runner.lanes.backend_for(t.session_count)) is LocalLanes  # type: ignore[attr-defined]
    finally:
        await runner.close()


class _Recording:
    """A lane backend that serves every class and records which runs it heard of."""

    def __init__(self) -> None:
        self.heard: list[tuple[str, str]] = []

    @classmethod
    def from_settings(cls, settings: Settings, **options: object) -> _Recording:
        return cls()

    def lane(self, persistence: PersistenceClass) -> Lane:
        return self

    async def run(self, invocation: ToolInvocation) -> LaneResult:
        raise AssertionError("this receipt makes no call")

    async def park(self, run_id: str) -> None:
        self.heard.append(("park", run_id))

    async def end_run(self, run_id: str) -> None:
        self.heard.append(("end", run_id))

    async def close(self) -> None:
        pass


async def test_only_backends_that_may_hold_a_run_hear_of_its_park_and_end(tmp_path: Path) -> None:
    """A vendor mapped to one-shot calls only is not asked about every run that parks."""
    one_shot, sessions, override = _Recording(), _Recording(), _Recording()
    config = ToolLanes(
        lanes={"ephemeral": "one_shot", "persistent_session": "sessions"},
        overrides={"session_count": "override"},
    )  # fmt: skip
    router = LaneRouter(
        {"local": LocalLanes(tmp_path), "one_shot": one_shot, "sessions": sessions,
         "override": override},
        config, [t.session_count, t.add],
    )  # fmt: skip
    await router.park("run-1")
    await router.end_run("run-1")
    assert one_shot.heard == []
    assert sessions.heard == override.heard == [("park", "run-1"), ("end", "run-1")]
    await router.close()


def test_a_backend_that_cannot_serve_its_class_is_refused_naming_the_mapping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAYTONA_API_KEY", "key")
    monkeypatch.setenv("DAYTONA_API_URL", "http://127.0.0.1:9/api")  # never called
    settings = from_toml(tmp_path, '[tools.lanes]\nephemeral = "daytona"\n')
    with pytest.raises(ConfigurationError) as raised:
        LaneRouter.from_settings(settings)
    message = str(raised.value)
    assert message.startswith("[tools.lanes] ephemeral = 'daytona'")
    assert "persistent tools only" in message and "\n" not in message


def test_an_override_to_a_backend_that_cannot_serve_the_tool_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("E2B_API_KEY", "key")
    settings = from_toml(tmp_path, '[tools.overrides]\nsession_count = "e2b"\n')
    with pytest.raises(ConfigurationError, match=r"^\[tools.overrides\] session_count = 'e2b': "
                       "the e2b backend runs ephemeral tools only"):  # fmt: skip
        LaneRouter.from_settings(settings)


def test_a_lane_on_a_backend_that_is_not_installed_names_the_mapping(tmp_path: Path) -> None:
    settings = from_toml(tmp_path, '[tools.lanes]\npersistent_workspace = "modal"\n')
    with pytest.raises(ConfigurationError) as raised:
        LaneRouter.from_settings(settings)
    message = str(raised.value)
    assert message.startswith("tools.lanes.persistent_workspace = 'modal': no backend 'modal'")
    assert "known: bubblewrap, daytona, e2b, local" in message


def test_a_lane_whose_sdk_is_not_installed_names_the_mapping_and_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TENSORLAKE_API_KEY", "key")
    for module in ("tensorlake", "tensorlake.sandbox"):
        monkeypatch.setitem(sys.modules, module, None)  # as if the extra were not installed
    settings = from_toml(tmp_path, '[tools.lanes]\npersistent_session = "tensorlake"\n')
    with pytest.raises(ConfigurationError) as raised:
        LaneRouter.from_settings(settings)
    message = str(raised.value)
    assert message.startswith("tools.lanes.persistent_session = 'tensorlake': ")
    assert "pip install 'tether[tensorlake]'" in message and "\n" not in message


def test_an_override_for_a_tool_no_workflow_registers_is_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = from_toml(tmp_path, '[tools.overrides]\nrender_chrat = "bubblewrap"\n')
    with caplog.at_level(logging.WARNING):
        router = LaneRouter.from_settings(settings)
    assert set(router.backends) == {"local", "bubblewrap"}
    assert [r.getMessage() for r in caplog.records] == [
        "[tools.overrides] render_chrat = 'bubblewrap': no loaded workflow registers a tool "
        "named 'render_chrat'; the override applies if one is loaded later"
    ]


def test_worker_run_wait_and_serve_refuse_a_bad_mapping_before_any_run_starts(
    tmp_path: Path,
) -> None:
    env = {
        **os.environ, "PYTHONPATH": str(ROOT), "TETHER_DATA_DIR": str(tmp_path / ".tether"),
        "TETHER_WORKFLOWS": json.dumps(["tests.runtime.flows"]), "TETHER_TRACE": "none",
        "TETHER_TOOLS__LANES__EPHEMERAL": "nope",
    }  # fmt: skip

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "tether.cli", *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)  # fmt: skip

    start = ("run", "approval", "-i", '{"ticket": "T"}', "--wait")
    for args in (("worker", "--until-idle"), start, ("serve", "--port", "0")):
        done = cli(*args)
        assert done.returncode == 2, done.stderr
        (line,) = [x for x in done.stderr.splitlines() if x.startswith("error:")]
        assert "tools.lanes.ephemeral = 'nope': no backend 'nope'" in line
    assert json.loads(cli("runs", "--json").stdout) == []
