"""Pricing one call from its token usage with the `genai-prices` package (no price table here).

The offline backends (`local`, and `scripted` by default) report provider `local`: they cost
nothing, and that is a known price. A model no price list knows is priced at zero and marked
unknown, with a log warning: an unpriced call must never fail the run that made it.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from genai_prices import Usage as PriceUsage
from genai_prices import calc_price

from tether.foundation.cost.contract import Price
from tether.foundation.models.contract import Usage

FREE_PROVIDERS = frozenset({"local"})

log = logging.getLogger(__name__)


def price_usage(provider: str | None, models: list[str], usage: Usage) -> Price:
    """The price of `usage` for the first of `models` (the provider's name for the model, then
    the route's) that `provider`'s price list knows."""
    if provider in FREE_PROVIDERS:
        return Price(usd=Decimal(0), known=True)
    counted = PriceUsage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
    )
    for model in dict.fromkeys(models):
        try:
            calculation = calc_price(counted, model_ref=model, provider_id=provider)
        except LookupError:
            continue
        return Price(usd=Decimal(calculation.total_price), known=True)
    log.warning(
        "no price for model %s at provider %s; the call is recorded at $0 and marked unpriced",
        " / ".join(models),
        provider or "(none configured)",
    )
    return Price(usd=Decimal(0), known=False)
