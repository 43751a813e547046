"""Bad input a new user types gets one line saying what was wrong and what is expected, exit 2:
budget amounts, event names, workflow modules that fail to import, and every settings error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    base = {
        **os.environ,
        "PYTHONPATH": f"{ROOT}{os.pathsep}{tmp_path}",
        "TETHER_DATA_DIR": str(tmp_path / ".tether"),
        "TETHER_WORKFLOWS": json.dumps(["tests.runtime.flows"]),
        "TETHER_POLL_INTERVAL": "0.02",
        "TETHER_TRACE": "none",
    }
    base.pop("TETHER_DEBUG", None)

    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tether.cli", *args],
            env={**base, **env},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run


def _one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("error:")]
    return line


def test_budget_raise_refuses_nan_infinity_and_negative_amounts(cli: Cli) -> None:
    run_id = json.loads(cli("run", "approval", "--input", '{"ticket": "T"}', "--json").stdout)["id"]
    for amount in ("nan", "inf", "-inf", "0"):
        assert "finite positive" in _one_line(cli("budget", "raise", run_id, "--usd", amount))
    assert cli("budget", "raise", run_id, "--usd", "2").returncode == 0


def test_a_blank_event_name_is_refused(cli: Cli) -> None:
    for name in ("", "   "):
        assert "non-blank" in _one_line(cli("send-event", name))


def test_run_json_names_the_run_id_as_every_other_json_does(cli: Cli) -> None:
    started = json.loads(cli("run", "approval", "--input", '{"ticket": "T"}', "--json").stdout)
    listed = json.loads(cli("runs", "--json").stdout)
    assert list(started) == ["id"] and [r["id"] for r in listed] == [started["id"]]


@pytest.mark.parametrize(
    ("source", "said"),
    [
        ("raise RuntimeError('no API key in this shell')\n", "RuntimeError: no API key"),
        ("def broken(:\n", "SyntaxError: invalid syntax"),
        ("import no_such_dependency\n", "No module named 'no_such_dependency'"),
    ],
)
def test_a_workflow_module_that_fails_to_import_is_named_in_one_line(
    cli: Cli, tmp_path: Path, source: str, said: str
) -> None:
    (tmp_path / "myagents.py").write_text(source)
    line = _one_line(cli("runs", TETHER_WORKFLOWS="myagents"))
    assert "'myagents'" in line and said in line
    debug = cli("--debug", "runs", TETHER_WORKFLOWS="myagents")
    assert debug.returncode == 2 and "Traceback" in debug.stderr
    env_debug = cli("runs", TETHER_WORKFLOWS="myagents", TETHER_DEBUG="1")
    assert env_debug.returncode == 2 and "Traceback" in env_debug.stderr


def test_tether_workflows_takes_a_comma_separated_list_as_well_as_json(
    cli: Cli, tmp_path: Path
) -> None:
    (tmp_path / "helpdesk.py").write_text(
        "from pydantic import BaseModel\nfrom tether import Context, workflow\n\n"
        "class In(BaseModel):\n    n: int = 0\n\n"
        "@workflow(name='helpdesk', version='1.0.0')\n"
        "async def helpdesk(ctx: Context, inp: In) -> In:\n    return inp\n"
    )
    for value in ("helpdesk, tests.runtime.flows", '["helpdesk", "tests.runtime.flows"]'):
        listed = cli("workflows", TETHER_WORKFLOWS=value)
        assert listed.returncode == 0, listed.stderr
        assert "helpdesk@1.0.0" in listed.stdout and "steps@1.0.0" in listed.stdout


@pytest.mark.parametrize(
    ("env", "toml", "said"),
    [
        ({"TETHER_LEASE_SECONDS": "abc"}, None, "TETHER_LEASE_SECONDS"),
        ({"TETHER_MODEL_BACKENDS": "openai"}, None, "TETHER_MODEL_BACKENDS: expected JSON"),
        ({"TETHER_CHECKPOINT": "nosuch"}, None, "no backend 'nosuch'"),
        ({}, "[tether]\nlease_seconds = 'soon'\n", "lease_seconds"),
        ({}, "[tether\n", "tether.toml"),
    ],
)
def test_every_settings_error_is_one_line_in_every_command(
    cli: Cli, tmp_path: Path, env: dict[str, str], toml: str | None, said: str
) -> None:
    if toml is not None:
        (tmp_path / "tether.toml").write_text(toml)
    commands = (["runs"], ["workflows"], ["worker", "--until-idle"], ["inspect", "R"],
                ["budget", "raise", "R", "--usd", "1"], ["send-event", "e"])  # fmt: skip
    with ThreadPoolExecutor(len(commands)) as pool:  # six interpreters at once, not in turn
        answers = pool.map(lambda command: cli(*command, **env), commands)
        for command, answer in zip(commands, answers, strict=True):
            assert said in _one_line(answer), command


def test_a_missing_option_is_named_as_it_is_typed(cli: Cli) -> None:
    assert "'--step'" in _one_line(cli("resolve", "R"))


def test_tether_wait_runs_an_existing_run_here_with_run_waits_exit_codes(cli: Cli) -> None:
    started = json.loads(cli("run", "steps", "--input", '{"n": 2}', "--json").stdout)["id"]
    done = cli("wait", started)
    assert done.returncode == 0, done.stderr
    assert "step 0" in done.stdout and "step 1" in done.stdout and "completed" in done.stdout
    flaky = '{"key": "k", "failures": 0, "fatal": true}'
    failing = json.loads(cli("run", "flaky", "--input", flaky, "--json").stdout)["id"]
    failed = cli("wait", failing, "--json")
    assert failed.returncode == 1 and json.loads(failed.stdout)["status"] == "failed"
    assert "no-such-run" in _one_line(cli("wait", "no-such-run"))


def test_run_wait_on_an_event_wait_shows_the_event_and_its_match(cli: Cli) -> None:
    waiting = cli("run", "approval", "--input", '{"ticket": "T-9", "timeout": 0.5}', "--wait")
    assert waiting.returncode == 0, waiting.stderr  # timed out: the workflow answers None
    assert 'waiting for event \'approved\' matching {"ticket": "T-9"}' in waiting.stdout


def test_a_bad_limits_table_is_one_line_naming_its_key() -> None:
    from tether.errors import ConfigurationError
    from tether.foundation.limits.config import load_limits_config
    from tether.settings import Settings

    bad = Settings(limits={"model_call_cap": "many", "workflows": {}})
    with pytest.raises(ConfigurationError) as caught:
        load_limits_config(bad)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("bad [limits] model_call_cap:")
    assert "'many'" in message
