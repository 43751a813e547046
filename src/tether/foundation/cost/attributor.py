"""I11 CostAttributor: prices each routed model call and keeps it per (run, step).

The runtime calls `record` once the model call's journal entry is committed (and again, to no
effect, if a replay or a retried commit gets there twice); `inspect` and `runs` read the totals.
The store follows the database the settings give I11 (`TETHER_COST_DATABASE_URL`, else
`TETHER_DATABASE_URL`, else the SQLite file in the data directory): `sqlite:///...`,
`postgresql://...`, or `memory://` for a store that lives as long as the process.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tether.foundation.cost.contract import CostRecord, CostStore, CostTotal, Price
from tether.foundation.cost.pricing import price_usage
from tether.foundation.loader import backend_for_url, open_backend
from tether.foundation.models.contract import RoutedResponse

if TYPE_CHECKING:
    from tether.settings import Settings


def open_store(settings: Settings) -> CostStore:
    """The cost store for the settings' I11 database URL, found through entry points."""
    name = backend_for_url("cost", settings.database_url_for("cost"))
    return open_backend("cost", name, CostStore, settings)


class CostAttributor:
    """Prices calls with genai-prices and records them, once each, in a `CostStore`."""

    def __init__(self, store: CostStore) -> None:
        self.store = store

    @classmethod
    def from_settings(cls, settings: Settings) -> CostAttributor:
        return cls(open_store(settings))

    def price(self, routed: RoutedResponse) -> Price:
        """What the call cost; zero and `known=False` for a model no price list has."""
        response = routed.response
        return price_usage(
            response.provider, [response.model, routed.decision.model], response.usage
        )

    def record(
        self,
        run_id: str,
        workflow: str,
        step_id: str,
        routed: RoutedResponse,
        price: Price | None = None,
    ) -> CostRecord:
        """Store the call made at `step_id` at `price`, by default what `price(routed)` says
        (the runtime passes the price it has worked out already, for the cost cap: a
        price-list lookup is not free); a second record of that step returns the first,
        unchanged, so a replay never counts a call twice."""
        if price is None:
            price = self.price(routed)
        usage = routed.response.usage
        row = CostRecord(
            run_id=run_id,
            workflow=workflow,
            step_id=step_id,
            backend=routed.decision.backend,
            provider=routed.response.provider,
            model=routed.response.model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            usd=price.usd,
            priced=price.known,
        )
        return self.store.record(row)

    def calls(self, run_id: str) -> list[CostRecord]:
        return self.store.calls(run_id)

    def run_total(self, run_id: str) -> CostTotal:
        return self.store.run_totals([run_id])[run_id]

    def run_totals(self, run_ids: Sequence[str]) -> dict[str, CostTotal]:
        return self.store.run_totals(run_ids)

    def workflow_total(self, workflow: str) -> CostTotal:
        return self.store.workflow_total(workflow)

    def close(self) -> None:
        self.store.close()
