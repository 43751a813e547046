"""I7: a known secret put through a model call and a tool call (and a tool error quoting it)
is found in no store tether writes: journal, tool_call_results, audit, cost, traces, blobs,
logs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from tether import RunStatus, Tether
from tether.foundation.secrets.redaction import RedactingFilter

SECRET = "sk-live-9f8e7d6c5b4a39281706"


def test_a_known_secret_reaches_no_store(
    agent_tether: Callable[..., Tether],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("TETHER_TEST_SECRET", SECRET)
    caplog.handler.addFilter(RedactingFilter())
    caplog.set_level(logging.DEBUG)
    t = agent_tether()
    run = t.run(t.start("keyed", {"secret_name": "TETHER_TEST_SECRET"}))
    assert run.status is RunStatus.COMPLETED
    output = t.output(run)["result"]
    assert output.startswith("service answered") and "***" in output  # it went through, masked
    logging.getLogger("tether.test").warning("the workflow used %s", SECRET)
    t.close()
    files = [p for p in (tmp_path / ".tether").rglob("*") if p.is_file()]
    assert any(p.name.endswith(".db") for p in files) and any(p.suffix == ".jsonl" for p in files)
    leaks = [str(p) for p in files if SECRET.encode() in p.read_bytes()]
    assert leaks == []
    assert SECRET not in caplog.text and "***" in caplog.text
