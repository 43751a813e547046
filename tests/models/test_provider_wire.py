"""What the anthropic and openai backends put on the wire, and what they make of odd answers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes import anthropic_server, openai_server
from tests.fakes.anthropic_server import AnthropicServer
from tests.fakes.openai_server import OpenAIServer
from tether.errors import ConfigurationError, ModelFatalError, ModelRetryableError
from tether.foundation.models.backends.anthropic import AnthropicBackend
from tether.foundation.models.backends.failures import retry_after
from tether.foundation.models.backends.openai import OpenAIBackend
from tether.foundation.models.contract import Message, ModelRequest, ToolCall

pytestmark = pytest.mark.anyio

CALLS = [
    ToolCall(id="t1", name="weather", arguments={"city": "Oslo"}),
    ToolCall(id="t2", name="weather", arguments={"city": "Rome"}),
]
CONVERSATION = [
    Message.system("Be brief."),
    Message.user("Weather in Oslo and Rome?"),
    Message.assistant("Checking both.", CALLS),
    Message.tool(CALLS[0], "rain"),
    Message.tool(CALLS[1], "sun"),
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def anthropic_srv(monkeypatch: pytest.MonkeyPatch) -> Iterator[AnthropicServer]:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    server = AnthropicServer()
    yield server
    server.close()


@pytest.fixture
def openai_srv() -> Iterator[OpenAIServer]:
    server = OpenAIServer()
    yield server
    server.close()


async def test_anthropic_gets_system_apart_and_parallel_tool_results_in_one_user_turn(
    anthropic_srv: AnthropicServer,
) -> None:
    backend = AnthropicBackend(base_url=anthropic_srv.origin)
    await backend.complete(
        ModelRequest(task_class="agent", messages=CONVERSATION), "claude-sonnet-4-6"
    )
    await backend.aclose()

    [sent] = anthropic_srv.requests
    assert sent["system"] == "Be brief."
    assert [t["role"] for t in sent["messages"]] == ["user", "assistant", "user"]
    assert [b["type"] for b in sent["messages"][1]["content"]] == ["text", "tool_use", "tool_use"]
    results = sent["messages"][2]["content"]
    assert [(r["tool_use_id"], r["content"]) for r in results] == [("t1", "rain"), ("t2", "sun")]


async def test_openai_gets_function_calls_with_json_arguments_and_one_tool_message_each(
    openai_srv: OpenAIServer,
) -> None:
    backend = OpenAIBackend(base_url=openai_srv.base_url, api_key_env="TETHER_TEST_UNSET_KEY")
    await backend.complete(ModelRequest(task_class="agent", messages=CONVERSATION), "gpt-4o")
    await backend.aclose()

    [sent] = openai_srv.requests
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "tool", "tool"]
    assert sent["messages"][2]["tool_calls"][1]["function"]["arguments"] == '{"city": "Rome"}'
    assert sent["messages"][4] == {"role": "tool", "tool_call_id": "t2", "content": "sun"}


async def test_openai_tool_arguments_that_are_not_json_fail_retryably(
    openai_srv: OpenAIServer,
) -> None:
    openai_srv.queue(openai_server.tool_call("weather", "{city: Oslo"))
    backend = OpenAIBackend(base_url=openai_srv.base_url, api_key_env="TETHER_TEST_UNSET_KEY")
    with pytest.raises(ModelRetryableError, match="not JSON"):
        await backend.complete(
            ModelRequest(task_class="agent", messages=CONVERSATION[:2]), "gpt-4o"
        )
    await backend.aclose()


async def test_anthropic_unauthorized_is_fatal_and_overloaded_is_retryable(
    anthropic_srv: AnthropicServer,
) -> None:
    backend = AnthropicBackend(base_url=anthropic_srv.origin)
    request = ModelRequest(task_class="agent", messages=CONVERSATION[:2])
    anthropic_srv.queue(anthropic_server.failure(401), anthropic_server.failure(529))
    with pytest.raises(ModelFatalError) as fatal:
        await backend.complete(request, "claude-sonnet-4-6")
    with pytest.raises(ModelRetryableError) as overloaded:
        await backend.complete(request, "claude-sonnet-4-6")
    await backend.aclose()
    assert fatal.value.status == 401
    assert overloaded.value.status == 529


async def test_an_unreachable_provider_is_a_retryable_network_failure() -> None:
    server = OpenAIServer()
    server.close()  # nothing listens on this port any more
    backend = OpenAIBackend(base_url=server.base_url, api_key_env="TETHER_TEST_UNSET_KEY")
    with pytest.raises(ModelRetryableError, match="could not be reached"):
        await backend.complete(
            ModelRequest(task_class="agent", messages=CONVERSATION[:2]), "gpt-4o"
        )
    await backend.aclose()


def test_a_hosted_provider_without_its_key_fails_at_construction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match=r"\$ANTHROPIC_API_KEY"):
        AnthropicBackend()
    with pytest.raises(ConfigurationError, match=r"\$OPENAI_API_KEY"):
        OpenAIBackend()


def test_retry_after_prefers_milliseconds_and_ignores_http_dates() -> None:
    assert retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after({"retry-after": "3"}) == 3.0
    assert retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) is None


async def test_openai_streams_text_as_it_comes_and_assembles_tool_calls(
    openai_srv: OpenAIServer,
) -> None:
    backend = OpenAIBackend(base_url=openai_srv.base_url)
    request = ModelRequest(task_class="agent", messages=[Message.user("Say it slowly")])
    tokens: list[str] = []

    async def on_token(text: str) -> None:
        tokens.append(text)

    openai_srv.queue(openai_server.text("one two three"))
    said = await backend.stream(request, "gpt-4o", on_token)
    assert tokens == ["one", " two", " three"] and said.text == "one two three"
    assert said.usage.output_tokens > 0 and openai_srv.requests[-1]["stream"] is True
    openai_srv.queue(openai_server.tool_call("weather", {"city": "Oslo"}))
    called = await backend.stream(request, "gpt-4o", on_token)
    assert [(c.name, c.arguments) for c in called.tool_calls] == [("weather", {"city": "Oslo"})]
    assert called.stop_reason == "tool_calls" and tokens == ["one", " two", " three"]
    await backend.aclose()
