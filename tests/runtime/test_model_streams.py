"""A model call that streams its tokens into a run stream: the call is journaled once, as a
whole; a reader sees the answer as it is generated, and after a kill -9 mid-stream it sees the
cut-short attempt's tokens, then a restart marker, then the new attempt's, never a token twice
unmarked. On the local offline model, and through the official OpenAI SDK against a local
server speaking its streamed wire format."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.openai_server import OpenAIServer
from tests.workers import kill_worker_when, run_worker_until
from tether import Tether
from tether.foundation.checkpoint.contract import EntryKind, RunStatus, StreamItem

WORKFLOWS = ["tests.runtime.flows", "tests.runtime.model_flows"]
QUESTION = " ".join(f"word{i}" for i in range(30))


def kept(items: list[StreamItem]) -> tuple[str, int]:
    """What a reader keeps of a streamed answer (it drops the values a restart marker names),
    and how many markers it met."""
    tokens: list[tuple[int, str]] = []
    markers = 0
    for item in items:
        value = json.loads(item.value)
        if isinstance(value, dict):
            markers += 1
            tokens = [(offset, t) for offset, t in tokens if offset < value["$restart"]]
        else:
            tokens.append((item.offset, value))
    return "".join(t for _, t in tokens), markers


@pytest.mark.parametrize("engine", ["local", pytest.param("temporal", marks=pytest.mark.temporal)])
def test_a_local_models_answer_streams_word_by_word_and_is_journaled_once(
    make_tether: Callable[..., Tether], request: pytest.FixtureRequest, engine: str
) -> None:
    """On Temporal too: the model call's activity writes the tokens through the same I2
    append, under the lease the run's execution holds."""
    on: dict[str, Any] = {"engine": engine}
    if engine == "temporal":
        on["temporal_address"] = request.getfixturevalue("temporal_server")
        on["temporal_queue_prefix"] = f"t{uuid.uuid4().hex[:12]}"
    t = make_tether("sqlite", workflows=WORKFLOWS, **on)
    run_id = t.start("streamed_answer", {"text": "Leases expire. Workers claim runs again."})
    run = t.run(run_id)
    assert run.status is RunStatus.COMPLETED
    items = list(t.stream(run_id, "answer", follow=False))
    assert len(items) > 1  # not the whole answer in one value
    assert kept(items) == (t.output(run), 0)
    assert [e.kind for e in t.journal(run_id)] == [EntryKind.MODEL]


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIServer]:
    monkeypatch.setenv("TEST_OPENAI_KEY", "sk-test")
    server = OpenAIServer()
    yield server
    server.close()


def test_a_kill_mid_stream_leaves_a_marked_restart_and_one_journaled_call(
    make_tether: Callable[..., Tether], provider: OpenAIServer, tmp_path: Path
) -> None:
    backends = {"openai": {"base_url": provider.base_url, "api_key_env": "TEST_OPENAI_KEY"}}
    routes = {"summarize": [{"backend": "openai", "model": "gpt-4o", "family": "gpt"}]}
    t = make_tether("sqlite", workflows=WORKFLOWS, model_backends=backends, model_routes=routes)
    env = {
        "TETHER_WORKFLOWS": json.dumps(WORKFLOWS),
        "TETHER_MODEL_BACKENDS": json.dumps(backends),
        "TETHER_MODEL_ROUTES": json.dumps(routes),
    }
    provider.chunk_delay = 0.05
    run_id = t.start("streamed_answer", {"text": QUESTION})
    data_dir = tmp_path / ".tether"
    kill_worker_when(data_dir, lambda: provider.streamed >= 10, env)
    before = list(t.stream(run_id, "answer", follow=False))
    assert before and t.status(run_id).status is RunStatus.RUNNING  # the dead worker's lease
    provider.chunk_delay = 0.0
    run_worker_until(data_dir, lambda: t.status(run_id).status is RunStatus.COMPLETED, env)
    items = list(t.stream(run_id, "answer", follow=False))
    answer = t.output(t.status(run_id))
    assert answer == f"echo: {QUESTION}"
    assert items[: len(before)] == before  # the cut-short attempt's tokens stay
    assert kept(items) == (answer, 1)
    assert len(provider.requests) == 2 and all(r["stream"] for r in provider.requests)
    assert [e.kind for e in t.journal(run_id)] == [EntryKind.MODEL]


def test_a_stream_dropped_mid_answer_is_marked_before_the_fallbacks_tokens(
    make_tether: Callable[..., Tether], provider: OpenAIServer
) -> None:
    backends = {"openai": {"base_url": provider.base_url, "api_key_env": "TEST_OPENAI_KEY"}}
    routes = {
        "summarize": [
            {"backend": "openai", "model": "gpt-4o", "family": "gpt"},
            {"backend": "openai", "model": "gpt-4o-mini", "family": "gpt"},
        ]
    }
    t = make_tether("sqlite", workflows=WORKFLOWS, model_backends=backends, model_routes=routes)
    provider.cut_next_stream_after = 6  # the role and five words, then the connection drops
    run_id = t.start("streamed_answer", {"text": QUESTION})
    run = t.run(run_id)
    assert run.status is RunStatus.COMPLETED
    items = list(t.stream(run_id, "answer", follow=False))
    values = [json.loads(i.value) for i in items]
    assert values[5] == {"$restart": 0}  # after the five words the dropped attempt wrote
    assert kept(items) == (t.output(run), 1) == (f"echo: {QUESTION}", 1)
    [entry] = t.journal(run_id)
    assert entry.kind is EntryKind.MODEL and '"gpt-4o-mini"' in (entry.value or "")
