"""A Tether whose runs call tools and models, with guards configured per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.openai_server import OpenAIServer
from tether import Settings, Tether


@pytest.fixture
def agent_tether(tmp_path: Path) -> Iterator[Callable[..., Tether]]:
    opened: list[Tether] = []

    def make(**extra: Any) -> Tether:
        options: dict[str, Any] = {
            "data_dir": tmp_path / ".tether", "trace": "jsonl", "poll_interval": 0.02,
            "lease_seconds": 1.0, "workflows": ["tests.receipts.agents"], **extra,
        }  # fmt: skip
        settings = Settings(**options)
        t = Tether(settings)
        opened.append(t)
        return t

    yield make
    for t in opened:
        t.close()


@pytest.fixture
def openai_srv(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIServer]:
    monkeypatch.setenv("TEST_OPENAI_KEY", "sk-test")
    server = OpenAIServer()
    yield server
    server.close()


def on_openai(server: OpenAIServer) -> dict[str, object]:
    return {
        "model_backends": {
            "openai": {"base_url": server.base_url, "api_key_env": "TEST_OPENAI_KEY"}
        },
        "model_routes": {"agent": [{"backend": "openai", "model": "gpt-4o", "family": "gpt"}]},
    }
