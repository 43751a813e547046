"""Which I7 backend serves secrets, from the `[secrets]` table of tether.toml.

    [secrets]
    backend = "vault"                       # default "env"
    options = { url = "https://vault:8200", mount = "secret", path = "tether" }

Options go to the backend's constructor. Tokens never sit in tether.toml: the vault backend
reads `VAULT_TOKEN` (and `VAULT_ADDR` when no url is given), as every Vault client does.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tether.errors import BackendNotFound, ConfigurationError
from tether.foundation.secrets.contract import SecretsProvider
from tether.settings import Settings

GROUP = "tether.secrets"


class SecretsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: str = "env"
    options: dict[str, Any] = Field(default_factory=dict)


def open_secrets(settings: Settings) -> SecretsProvider:
    """The configured secrets backend, checked against the contract."""
    config = SecretsConfig.model_validate((settings.model_extra or {}).get("secrets", {}))
    found = {ep.name: ep for ep in entry_points(group=GROUP)}
    if config.backend not in found:
        raise BackendNotFound(GROUP, config.backend, sorted(found))
    try:
        provider = found[config.backend].load()(**config.options)
    except (ImportError, TypeError) as e:
        raise ConfigurationError(f"secrets backend {config.backend!r} ({GROUP}): {e}") from e
    if not isinstance(provider, SecretsProvider):
        raise ConfigurationError(
            f"entry point {config.backend!r} in group {GROUP!r} built "
            f"{type(provider).__name__}, which has no `get(name) -> Secret`"
        )
    return provider
