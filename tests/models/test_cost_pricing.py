"""I11 pricing: real prices from genai-prices, free offline models, unknown models never crash."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal

import pytest

from tests.fakes import openai_server
from tests.fakes.openai_server import OpenAIServer
from tether.foundation.cost.attributor import CostAttributor
from tether.foundation.cost.memory import MemoryCostStore
from tether.foundation.models.contract import (
    Message,
    ModelRequest,
    ModelResponse,
    RouteDecision,
    RoutedResponse,
    Usage,
)
from tether.foundation.models.router import ModelRouter
from tether.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _routed(provider: str | None, model: str, usage: Usage, backend: str = "b") -> RoutedResponse:
    return RoutedResponse(
        response=ModelResponse(text="x", model=model, provider=provider, usage=usage),
        decision=RouteDecision(backend=backend, model=model, family="f"),
    )


def test_a_provider_call_costs_what_its_price_list_says_and_cache_reads_cost_less() -> None:
    attributor = CostAttributor(MemoryCostStore())
    fresh = attributor.price(_routed("anthropic", "claude-sonnet-4-6", Usage(input_tokens=10_000)))
    cached = attributor.price(
        _routed(
            "anthropic", "claude-sonnet-4-6", Usage(input_tokens=10_000, cache_read_tokens=9_000)
        )
    )
    assert fresh.known and fresh.usd > 0
    assert cached.known and 0 < cached.usd < fresh.usd


def test_a_dated_model_name_from_the_provider_still_finds_its_price() -> None:
    price = CostAttributor(MemoryCostStore()).price(
        _routed("openai", "gpt-4o-2024-08-06", Usage(input_tokens=1000, output_tokens=100))
    )
    assert price.known and price.usd > 0


def test_offline_models_cost_nothing_but_are_recorded() -> None:
    attributor = CostAttributor(MemoryCostStore())
    routed = _routed(
        "local", "rules-agent", Usage(input_tokens=50, output_tokens=5), backend="local"
    )
    row = attributor.record("r1", "triage@1.0.0", "0.1", routed)
    assert (row.usd, row.priced, row.input_tokens) == (Decimal(0), True, 50)
    assert attributor.run_total("r1").calls == 1


def test_an_unknown_model_is_recorded_unpriced_with_a_logged_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    attributor = CostAttributor(MemoryCostStore())
    with caplog.at_level(logging.WARNING, logger="tether.foundation.cost.pricing"):
        row = attributor.record(
            "r1", "w@1", "0.1", _routed("openai", "my-finetune-xyz", Usage(input_tokens=10))
        )
    assert (row.usd, row.priced) == (Decimal(0), False)
    assert "my-finetune-xyz" in caplog.text
    assert attributor.run_total("r1").unpriced_calls == 1
    assert row.span_attributes()["tether.cost.priced"] is False


@pytest.fixture
def openai_srv() -> Iterator[OpenAIServer]:
    server = OpenAIServer()
    yield server
    server.close()


async def test_moving_cheap_classify_to_an_openai_compatible_server_is_configuration_only(
    openai_srv: OpenAIServer,
) -> None:
    request = ModelRequest(
        task_class="cheap_classify", messages=[Message.user("I was billed twice this month")]
    )
    attributor = CostAttributor(MemoryCostStore())

    offline = await ModelRouter.from_settings(Settings(model_routes={})).complete(request)
    openai_srv.queue(openai_server.text("billing"))
    hosted_settings = Settings(
        model_backends={"openai": {"base_url": openai_srv.base_url, "api_key_env": "TETHER_UNSET"}},
        model_routes={
            "cheap_classify": [{"backend": "openai", "model": "gpt-4o-mini", "family": "gpt"}]
        },
    )
    hosted_router = ModelRouter.from_settings(hosted_settings)
    hosted = await hosted_router.complete(request)
    await hosted_router.aclose()

    assert offline.response.text == hosted.response.text == "billing"
    assert (offline.decision.backend, hosted.decision.backend) == ("local", "openai")
    assert len(openai_srv.requests) == 1
    assert attributor.price(offline).usd == 0 and attributor.price(hosted).usd > 0
