"""I11 CostAttributor contract: what one model call cost, kept per (run, step) and rolled up.

A `CostRecord` is written once per journaled model call, keyed by (run_id, step_id): recording
the same step again (a replay, a retried commit) returns the row already stored instead of
counting the call twice. Stores own their own table and refer to runs by id only, never by
foreign key, so I11 can live in a different database from I2.

Money is `Decimal` US dollars end to end; no float ever holds a price.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from tether.settings import Settings


class Price(BaseModel):
    """The price of one call. `known` is False when no price list has the model: the call is
    recorded at zero and flagged, so a roll-up says how many of its calls are unpriced."""

    model_config = ConfigDict(frozen=True)

    usd: Decimal
    known: bool


class CostRecord(BaseModel):
    """One priced model call, as journaled under its run and step."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    workflow: str
    step_id: str
    backend: str
    provider: str | None
    model: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    usd: Decimal
    priced: bool
    recorded_at: datetime | None = None  # set by the store on first record

    def span_attributes(self) -> dict[str, str | int | float | bool]:
        """OpenTelemetry GenAI semantic-convention attributes plus tether's cost fields."""
        return {
            "gen_ai.provider.name": self.provider or self.backend,
            "gen_ai.response.model": self.model,
            "gen_ai.usage.input_tokens": self.input_tokens,
            "gen_ai.usage.output_tokens": self.output_tokens,
            "gen_ai.usage.cache_read.input_tokens": self.cache_read_tokens,
            "gen_ai.usage.cache_creation.input_tokens": self.cache_write_tokens,
            "tether.cost.usd": float(self.usd),
            "tether.cost.priced": self.priced,
        }


class CostTotal(BaseModel):
    """A roll-up of calls: per run for `tether inspect`/`tether runs`, per workflow for budgets."""

    model_config = ConfigDict(frozen=True)

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    usd: Decimal = Decimal(0)
    unpriced_calls: int = 0


class DailyCost(BaseModel):
    """The calls of one workflow id (`name@version`) recorded on one UTC day."""

    model_config = ConfigDict(frozen=True)

    workflow: str
    day: date
    cost: CostTotal


@runtime_checkable
class CostStore(Protocol):
    """Where cost records live; every method is one short transaction."""

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> Self:
        """How `tether.foundation.loader` builds it: from the settings (its database URL, the
        data directory) and the options of its table in tether.toml, where it has one."""
        ...

    def record(self, row: CostRecord) -> CostRecord:
        """Store the row unless (run_id, step_id) has one; return the stored row either way."""
        ...

    def calls(self, run_id: str) -> list[CostRecord]:
        """The run's calls in the order they were recorded."""
        ...

    def run_totals(self, run_ids: Sequence[str]) -> dict[str, CostTotal]:
        """A total for each run id given (zero for a run with no calls), in one query."""
        ...

    def workflow_total(self, workflow: str) -> CostTotal:
        """Every recorded call of every run of this workflow id."""
        ...

    def daily_totals(self, since: date) -> list[DailyCost]:
        """A total per workflow id and UTC day for the calls recorded on `since` or later,
        newest day first, then by workflow; from this store's rows alone (I2 may live in
        another database)."""
        ...

    def close(self) -> None: ...
