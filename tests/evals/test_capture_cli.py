"""`tether eval capture` writes a case file beside the workflow's code, and `tether eval run`
scores it: a user's own workflow package gets golden cases the same way the shipped ones do."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]
from typer.testing import CliRunner

from tether import Settings, Tether
from tether.cli.app import app
from tether.errors import NoEvalResults, NoGoldenCases

FLOW = """
from pydantic import BaseModel

from tether import Context, workflow


class Ask(BaseModel):
    topic: str


async def _answer(topic: str) -> str:
    return f"leases expire and another worker takes over the {topic}"


@workflow(name="capflow", version="1.0.0")
async def capflow(ctx: Context, ask: Ask) -> str:
    return await ctx.step("answer", _answer, ask.topic)
"""


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "src" / "myagents"
    root.mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "capflow.py").write_text(FLOW)
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    monkeypatch.setenv("TETHER_DATA_DIR", str(tmp_path / ".tether"))
    monkeypatch.setenv("TETHER_WORKFLOWS", json.dumps(["myagents.capflow"]))
    monkeypatch.setenv("TETHER_TRACE", "none")
    yield root
    sys.modules.pop("myagents.capflow", None)
    sys.modules.pop("myagents", None)


def test_a_captured_run_becomes_a_case_file_that_eval_run_scores(package: Path) -> None:
    cli = CliRunner()
    none = cli.invoke(app, ["eval", "run", "capflow"])
    assert isinstance(none.exception, NoGoldenCases) and "evals" in str(none.exception)

    with Tether(Settings()) as t:
        run_id = t.start("capflow", {"topic": "run"})
        t.run(run_id)
    captured = cli.invoke(app, ["eval", "capture", run_id, "--tag", "leases", "--id", "lease"])
    assert captured.exit_code == 0, captured.output
    case = yaml.safe_load((package / "evals" / "lease.yaml").read_text())
    assert case["input"] == {"topic": "run"} and case["tags"] == ["leases"]
    assert case["reference"] == "leases expire and another worker takes over the run"

    scored = cli.invoke(app, ["eval", "run", "capflow", "--ref", "main"])
    assert scored.exit_code == 0, scored.output
    assert "lease" in scored.output and "pass" in scored.output
    gate = cli.invoke(app, ["eval", "gate", "--baseline", "main", "--candidate", "main"])
    assert gate.exit_code == 0 and "leases" in gate.output
    nothing = cli.invoke(app, ["eval", "gate", "--baseline", "x", "--candidate", "y"])
    assert isinstance(nothing.exception, NoEvalResults)
