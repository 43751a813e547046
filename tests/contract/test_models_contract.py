"""I12 contract: every model backend answers the same normalized request the same way.

Each backend runs behind the real router: `local` (the offline default), `scripted`, and the
`anthropic` and `openai` backends through their official SDKs against wire-format test servers
in tests/fakes, so the SDKs' own request, parsing and error code runs. Backends are built
through the `tether.models` entry points, as configuration builds them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import BaseModel

from tests.contract.backends import installed
from tests.fakes import anthropic_server, openai_server
from tests.fakes.anthropic_server import AnthropicServer
from tests.fakes.openai_server import OpenAIServer
from tether.errors import ModelError
from tether.foundation.loader import open_backend
from tether.foundation.models.backends.failures import status_error
from tether.foundation.models.backends.scripted import ScriptedBackend
from tether.foundation.models.config import BackendConfig, RoutingTable
from tether.foundation.models.contract import (
    Message,
    ModelBackend,
    ModelRequest,
    ModelResponse,
    Route,
    RoutedResponse,
    StopReason,
    ToolCall,
    ToolSpec,
)
from tether.foundation.models.router import ModelRouter
from tether.settings import Settings

pytestmark = pytest.mark.anyio

BACKENDS = installed("models")
NEVER_FAIL = {"local"}  # the local models never fail on their own
FAILING = [p for p in BACKENDS if p.values[0] not in NEVER_FAIL]


class LookupOrder(BaseModel):
    """Look up an order by its number for the customer's email."""

    order_number: int
    email: str


ORDER_TOOL = ToolSpec(
    name="lookup_order",
    description="Look up an order by its number for the customer's email.",
    parameters=LookupOrder.model_json_schema(),
)
ASK = "Please lookup order number 4412 for ana@example.com"


@dataclass
class Harness:
    """One backend and the means to make it answer a given way on its next call."""

    backend: ModelBackend
    model: str
    say: Callable[[str], None]
    call_tool: Callable[[str, dict[str, Any]], None]
    fail: Callable[[int, float | None], None]
    received: Callable[[], int]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def anthropic_srv() -> Iterator[AnthropicServer]:
    server = AnthropicServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def openai_srv() -> Iterator[OpenAIServer]:
    server = OpenAIServer()
    yield server
    server.close()


def _unscriptable(*_: Any) -> None:
    """The local models decide for themselves; the tests' prompts steer them instead."""


def _build(name: str, **options: Any) -> ModelBackend:
    """As `model_backends` configuration builds it: through the `tether.models` entry point."""
    return open_backend("models", name, ModelBackend, Settings(), **options)


def _local() -> Harness:
    backend = _build("local")
    return Harness(backend, "rules-agent", _unscriptable, _unscriptable, _unscriptable, lambda: 0)


def _scripted() -> Harness:
    backend = open_backend("models", "scripted", ScriptedBackend, Settings())

    def call_tool(name: str, arguments: dict[str, Any]) -> None:
        call = ToolCall(id="call_1", name=name, arguments=arguments)
        backend.add(ModelResponse(tool_calls=[call], model="scripted-1"))

    def fail(status: int, retry_after: float | None) -> None:
        headers = {"retry-after": str(retry_after)} if retry_after is not None else {}
        backend.add(status_error("scripted", status, "scripted failure", headers))

    return Harness(
        backend, "scripted-1", backend.add, call_tool, fail, lambda: len(backend.requests)
    )


def _anthropic(server: AnthropicServer, monkeypatch: pytest.MonkeyPatch) -> Harness:
    monkeypatch.setenv("TEST_ANTHROPIC_KEY", "sk-test")
    config = BackendConfig.model_validate(
        {"base_url": server.origin, "api_key_env": "TEST_ANTHROPIC_KEY"}
    )
    start = len(server.requests)
    return Harness(
        _build("anthropic", **config.options),
        "claude-sonnet-4-6",
        lambda t: server.queue(anthropic_server.text(t)),
        lambda n, a: server.queue(anthropic_server.tool_use(n, a)),
        lambda s, r: server.queue(anthropic_server.failure(s, r)),
        lambda: len(server.requests) - start,
    )


def _openai(server: OpenAIServer, monkeypatch: pytest.MonkeyPatch) -> Harness:
    monkeypatch.setenv("TEST_OPENAI_KEY", "sk-test")
    config = BackendConfig.model_validate(
        {"base_url": server.base_url, "api_key_env": "TEST_OPENAI_KEY"}
    )
    start = len(server.requests)
    return Harness(
        _build("openai", **config.options),
        "gpt-4o",
        lambda t: server.queue(openai_server.text(t)),
        lambda n, a: server.queue(openai_server.tool_call(n, a)),
        lambda s, r: server.queue(openai_server.failure(s, r)),
        lambda: len(server.requests) - start,
    )


def _harness(name: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Harness:
    if name == "anthropic":
        return _anthropic(request.getfixturevalue("anthropic_srv"), monkeypatch)
    if name == "openai":
        return _openai(request.getfixturevalue("openai_srv"), monkeypatch)
    if name == "local":
        return _local()
    if name == "scripted":
        return _scripted()
    pytest.fail(f"no harness for model backend {name!r}: add one to _harness")


@pytest.fixture(params=BACKENDS)
def harness(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Harness:
    return _harness(request.param, request, monkeypatch)


@pytest.fixture(params=FAILING)
def failing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Harness:
    return _harness(request.param, request, monkeypatch)


class Waits:
    """Stands in for asyncio.sleep: records how long the router chose to wait."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


def _router(
    h: Harness, fallback: ScriptedBackend | None = None, waits: Waits | None = None
) -> ModelRouter:
    routes = [Route(backend="primary", model=h.model, family="primary-family")]
    backends: dict[str, ModelBackend] = {"primary": h.backend}
    if fallback is not None:
        routes.append(Route(backend="fallback", model="fallback-1", family="fallback-family"))
        backends["fallback"] = fallback
    table = RoutingTable(routes={"agent": tuple(routes)})
    return ModelRouter(table, backends, sleep=waits or Waits())


async def test_text_answer_is_normalized_with_usage_and_survives_json(harness: Harness) -> None:
    harness.say("Paris is the capital of France.")
    request = ModelRequest(
        task_class="agent", messages=[Message.user("What is the capital of France?")]
    )

    routed = await _router(harness).complete(request)

    assert routed.response.text
    assert routed.response.tool_calls == []
    assert routed.response.stop_reason is StopReason.END
    assert routed.response.usage.input_tokens > 0 and routed.response.usage.output_tokens > 0
    assert (routed.decision.backend, routed.decision.model) == ("primary", harness.model)
    assert RoutedResponse.model_validate_json(routed.model_dump_json()) == routed


async def test_tool_call_round_trip_yields_valid_arguments_then_a_final_answer(
    harness: Harness,
) -> None:
    router = _router(harness)
    harness.call_tool("lookup_order", {"order_number": 4412, "email": "ana@example.com"})
    first = ModelRequest(task_class="agent", messages=[Message.user(ASK)], tools=[ORDER_TOOL])

    asked = (await router.complete(first)).response

    assert asked.stop_reason is StopReason.TOOL_CALLS
    [call] = asked.tool_calls
    assert call.name == "lookup_order"
    assert LookupOrder.model_validate(call.arguments) == LookupOrder(
        order_number=4412, email="ana@example.com"
    )

    harness.say("Order 4412 shipped yesterday.")
    result = Message.tool(call, '{"order_number": 4412, "status": "shipped"}')
    second = first.model_copy(update={"messages": [*first.messages, asked.as_message(), result]})
    final = (await router.complete(second)).response

    assert final.stop_reason is StopReason.END
    assert final.tool_calls == []
    assert "shipped" in final.text


async def test_rate_limit_is_retried_on_the_same_route_after_the_providers_wait(
    failing: Harness,
) -> None:
    waits = Waits()
    failing.fail(429, 2.0)
    failing.say("after the wait")

    routed = await _router(failing, ScriptedBackend(), waits).complete(
        ModelRequest(task_class="agent", messages=[Message.user("hello")])
    )

    assert routed.response.text == "after the wait"
    assert waits.seconds == [2.0]
    assert [(a.backend, a.outcome) for a in routed.decision.attempts] == [
        ("primary", "retried"),
        ("primary", "ok"),
    ]
    assert failing.received() == 2


@pytest.mark.parametrize("status", [500, 529])
async def test_server_failure_falls_back_to_the_next_route(failing: Harness, status: int) -> None:
    failing.fail(status, None)
    fallback = ScriptedBackend(["from the fallback"])

    routed = await _router(failing, fallback).complete(
        ModelRequest(task_class="agent", messages=[Message.user("hello")])
    )

    assert routed.response.text == "from the fallback"
    assert routed.decision.backend == "fallback" and routed.decision.fell_back
    assert routed.decision.attempts[0].outcome == "failed"
    assert failing.received() == 1


async def test_a_refused_request_stops_without_trying_the_fallback(failing: Harness) -> None:
    failing.fail(400, None)
    fallback = ScriptedBackend(["never"])

    with pytest.raises(ModelError, match="refused"):
        await _router(failing, fallback).complete(
            ModelRequest(task_class="agent", messages=[Message.user("x")])
        )

    assert fallback.requests == []
