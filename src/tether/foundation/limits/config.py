"""I10 from the `[limits]` table of tether.toml; every number has a working default.

[limits]
backend = "redis"              # memory | sqlite | redis; default: by the limits database URL
options = { url = "redis://10.0.0.5:6379/0", prefix = "tether:" }
model_call_cap = 50            # model calls per run; call 51 raises BudgetExceeded
cost_cap_usd = 10.0            # per run; a warning at 50%, then stop or pause at 100%
on_cost_cap = "pause"          # stop (BudgetExceeded) | pause (BudgetPaused: a person raises it)
loop_after = 3                 # the 3rd identical call in a row raises LoopDetected

[limits.workflows.research_report]     # a workflow's name, or name@version
model_call_cap = 80

[limits.backends.anthropic]    # per model backend; unlisted ones get the defaults
requests_per_minute = 50       # no rate limit unless set
tokens_per_minute = 40000
failure_threshold = 5          # consecutive failures that open the circuit
cooldown_seconds = 30          # before a half-open probe
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, ValidationError

from tether.errors import ConfigurationError, NoBackendForUrl
from tether.foundation.limits.contract import LimitsStore
from tether.foundation.limits.guard import LimitsGuard
from tether.foundation.loader import backend_for_url, open_backend
from tether.settings import Settings, explain


class Budget(BaseModel):
    """What one workflow's runs may spend; top-level values, overridden per workflow."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_call_cap: PositiveInt = 50
    cost_cap_usd: PositiveFloat | None = 10.0
    on_cost_cap: Literal["stop", "pause"] = "stop"
    loop_after: int = Field(default=3, ge=2)


class BackendLimits(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    requests_per_minute: PositiveFloat | None = None
    tokens_per_minute: PositiveFloat | None = None
    failure_threshold: PositiveInt = 5
    cooldown_seconds: PositiveFloat = 30.0


_NO_BACKEND_LIMITS = BackendLimits()  # frozen: one for every backend with no table of its own


class LimitsConfig(Budget):
    backend: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    workflows: dict[str, dict[str, Any]] = Field(default_factory=dict)
    backends: dict[str, BackendLimits] = Field(default_factory=dict)

    def model_post_init(self, __context: Any) -> None:
        for name in self.workflows:
            self.budget_for(name)  # a bad override fails at start, not at the call it governs

    def budget_for(self, workflow: str) -> Budget:
        """`workflows["name@version"]`, else `workflows["name"]`, over the top-level budget."""
        base = {k: getattr(self, k) for k in Budget.model_fields}
        override = self.workflows.get(workflow, self.workflows.get(workflow.partition("@")[0]))
        try:
            return Budget.model_validate({**base, **(override or {})})
        except ValidationError as e:
            raise ConfigurationError(explain(e, f"limits.workflows.{workflow}")) from e

    def overrides(self, workflow: str) -> bool:
        """Whether `[limits.workflows]` has a table for this workflow (name or name@version)."""
        return workflow in self.workflows or workflow.partition("@")[0] in self.workflows

    def backend_limits(self, backend: str) -> BackendLimits:
        return self.backends.get(backend, _NO_BACKEND_LIMITS)


def load_limits_config(settings: Settings) -> LimitsConfig:
    try:
        return LimitsConfig.model_validate((settings.model_extra or {}).get("limits", {}))
    except ValidationError as e:
        raise ConfigurationError(explain(e, "limits")) from e


def open_limits_store(settings: Settings, config: LimitsConfig | None = None) -> LimitsStore:
    """The configured counters store, checked against the contract."""
    config = config or load_limits_config(settings)
    name = config.backend or _backend_for_url(settings)
    return open_backend("limits", name, LimitsStore, settings, **config.options)


def _backend_for_url(settings: Settings) -> str:
    """The limits backend the limits database URL names (`redis://...` redis, `sqlite:///...`
    sqlite), else sqlite: a database that holds rows, such as PostgreSQL, keeps no counters,
    and they stay on this host in the data directory."""
    try:
        return backend_for_url("limits", settings.database_url_for("limits"))
    except NoBackendForUrl:
        return "sqlite"


def open_limits(settings: Settings) -> LimitsGuard:
    """The I10 link of the guard chain (also what `tether budget raise` calls)."""
    config = load_limits_config(settings)
    return LimitsGuard(open_limits_store(settings, config), config)
