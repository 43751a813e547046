"""The `tether eval` CLI in process (so a test can change the code under evaluation), over a
fresh data directory, with candidates written as files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tether import Settings
from tether.cli.app import app
from tether.evals.candidate import eval_settings
from tether.evals.judging import Judge
from tether.foundation.blobs.files import FileBlobStore
from tether.foundation.evals.memory import MemoryEvalStore
from tether.foundation.models.router import ModelRouter
from tether.runtime.foundations import Foundations

WEAK_AGENT = """
[model_routes]
agent = [{backend = "local", model = "extractive", family = "local-rules"}]
"""
JWT_KEY = "eval-receipts-signing-key-0123456789abcdef"

Cli = Callable[..., Result]


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("TETHER_DATA_DIR", str(tmp_path / ".tether"))
    monkeypatch.setenv(
        "TETHER_WORKFLOWS", json.dumps(["workflows.research_report", "workflows.support_triage"])
    )
    monkeypatch.setenv("TETHER_TRACE", "none")
    monkeypatch.setenv("TETHER_JWT_KEY", JWT_KEY)
    monkeypatch.delenv("TETHER_TOKEN", raising=False)
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(app, ["eval", *args])

    return run


@pytest.fixture
def candidate(tmp_path: Path) -> Callable[[str], str]:
    def write(text: str) -> str:
        path = tmp_path / f"candidate-{abs(hash(text))}.toml"
        path.write_text(text)
        return str(path)

    return write


def guarded_judge(
    router: ModelRouter, data_dir: Path, **limits: object
) -> tuple[Judge, Foundations]:
    """A judge on `router` whose calls go through I9 and I10 and are priced by I11, every store
    in memory; `limits` set the `[limits]` table (e.g. model_call_cap)."""
    base = Settings(data_dir=data_dir, trace="none", limits=limits)
    settings = eval_settings(base, {}, data_dir)
    foundations = Foundations(settings, FileBlobStore(data_dir / "blobs"))
    judge = Judge(router, foundations.guards, foundations.cost, MemoryEvalStore())
    return judge, foundations
