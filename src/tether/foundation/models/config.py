"""The routing table: which backend and model answer each task class, read from settings.

In `tether.toml` (or `TETHER_MODEL_BACKENDS` / `TETHER_MODEL_ROUTES` as JSON):

    [tether.model_backends.openai]          # a backend instance; `type` defaults to its name
    base_url = "http://localhost:8000/v1"   # any OpenAI-compatible server
    api_key_env = "OPENAI_API_KEY"
    restricted_ok = false                   # may restricted data go here? (default: the backend's)

    [tether.model_routes]                   # task class -> routes, tried in order
    agent = [{backend = "anthropic", model = "claude-sonnet-4-6", family = "claude"},
             {backend = "openai", model = "gpt-4o", family = "gpt"}]
    "agent:restricted" = [{backend = "local", model = "rules-agent", family = "local-rules"}]

A `task:sensitivity` key overrides `task` for that sensitivity; `*` covers task classes with no
entry. Task classes the settings don't name keep the offline defaults below, so a new user with
no configuration and no API key gets a working `local` model for everything.

INV-3 is checked here, when the table is built: the judge's families and the agent's families
(every route, fallbacks included, at every sensitivity) must not meet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tether.errors import ConfigurationError, CrossFamilyJudgeError
from tether.foundation.models.contract import Route, Sensitivity

if TYPE_CHECKING:
    from tether.settings import Settings

AGENT_TASK = "agent"
JUDGE_TASK = "judge"
ANY_TASK = "*"


def _local(model: str, family: str) -> tuple[Route, ...]:
    return (Route(backend="local", model=model, family=family),)


# Two families on purpose: the local judge is not the local agent's model (INV-3 holds honestly).
DEFAULT_ROUTES: dict[str, tuple[Route, ...]] = {
    AGENT_TASK: _local("rules-agent", "local-rules"),
    "cheap_classify": _local("tfidf-logreg", "local-sklearn"),
    "summarize": _local("extractive", "local-rules"),
    JUDGE_TASK: _local("rubric-judge", "local-rubric"),
    ANY_TASK: _local("rules-agent", "local-rules"),
}


class BackendConfig(BaseModel):
    """One configured backend instance; extra keys are passed to the backend's constructor."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: str | None = None  # entry-point name in `tether.models`; defaults to the instance name
    restricted_ok: bool | None = None  # None: trust what the backend class declares

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class RoutingTable(BaseModel):
    """Task class (optionally `task:sensitivity`) to ordered routes."""

    model_config = ConfigDict(frozen=True)

    routes: dict[str, tuple[Route, ...]] = Field(default_factory=lambda: dict(DEFAULT_ROUTES))

    def candidates(self, task_class: str, sensitivity: Sensitivity) -> tuple[Route, ...]:
        """Routes for the call before any filtering: the most specific key wins."""
        for key in (f"{task_class}:{sensitivity.value}", task_class, ANY_TASK):
            if key in self.routes:
                return self.routes[key]
        return ()

    def families(self, task_class: str) -> frozenset[str]:
        """Every family a call of this task class may reach, at any sensitivity."""
        routes = [r for s in Sensitivity for r in self.candidates(task_class, s)]
        return frozenset(r.family for r in routes)

    def backends(self) -> frozenset[str]:
        return frozenset(r.backend for rs in self.routes.values() for r in rs)

    def check_cross_family(self) -> None:
        """INV-3: raise CrossFamilyJudgeError if the judge could share a family with the agent."""
        shared = self.families(JUDGE_TASK) & self.families(AGENT_TASK)
        if shared:
            raise CrossFamilyJudgeError(
                f"the judge and the agent may both use model family {', '.join(sorted(shared))!r}; "
                f"route `{JUDGE_TASK}` to a model of another family in model_routes (INV-3: an "
                "eval's judge must never grade its own family)"
            )


class ModelsConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    backends: dict[str, BackendConfig]
    table: RoutingTable


def _parse_key(key: str) -> str:
    task, sep, sensitivity = key.partition(":")
    if not task:
        raise ConfigurationError(f"model_routes key {key!r} has no task class")
    if sep and sensitivity not in {s.value for s in Sensitivity}:
        raise ConfigurationError(
            f"model_routes key {key!r}: sensitivity must be one of "
            f"{', '.join(s.value for s in Sensitivity)}"
        )
    return key


def build_table(routes: dict[str, list[dict[str, Any]]]) -> RoutingTable:
    """The defaults with the configured task classes replacing theirs; INV-3 checked."""
    table = dict(DEFAULT_ROUTES)
    for key, entries in routes.items():
        try:
            parsed = tuple(Route.model_validate(e) for e in entries)
        except ValidationError as e:
            raise ConfigurationError(
                f"model_routes[{key!r}]: each route needs backend, model and family ({e})"
            ) from e
        if not parsed:
            raise ConfigurationError(f"model_routes[{key!r}] is empty; give at least one route")
        table[_parse_key(key)] = parsed
    result = RoutingTable(routes=table)
    result.check_cross_family()
    return result


def load_config(settings: Settings) -> ModelsConfig:
    """Backends and routes from settings; every backend a route names gets a config entry."""
    try:
        backends = {
            name: BackendConfig.model_validate(raw) for name, raw in settings.model_backends.items()
        }
    except ValidationError as e:
        raise ConfigurationError(f"model_backends: {e}") from e
    table = build_table(settings.model_routes)
    for name in table.backends() - backends.keys():
        backends[name] = BackendConfig()
    return ModelsConfig(backends=backends, table=table)
