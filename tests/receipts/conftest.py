"""A Tether whose runs call tools and models, with guards configured per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.fakes.openai_server import OpenAIServer
from tether import Tether


@pytest.fixture
def agent_tether(make_tether: Callable[..., Tether]) -> Callable[..., Tether]:
    """`make_tether` for the agent workflows, with spans written to traces.jsonl."""

    def make(**extra: Any) -> Tether:
        options: dict[str, Any] = {"trace": "jsonl", "workflows": ["tests.receipts.agents"]}
        return make_tether(**{**options, **extra})

    return make


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
