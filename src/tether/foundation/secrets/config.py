"""Which I7 backend serves secrets, from the `[secrets]` table of tether.toml.

    [secrets]
    backend = "vault"                       # default "env"
    options = { url = "https://vault:8200", mount = "secret", path = "tether" }

Options go to the backend's `from_settings`, and from there to its constructor. Tokens never
sit in tether.toml: the vault backend reads `VAULT_TOKEN` (and `VAULT_ADDR` when no url is
given), as every Vault client does.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tether.foundation.loader import open_backend
from tether.foundation.secrets.contract import SecretsProvider
from tether.settings import Settings


class SecretsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: str = "env"
    options: dict[str, Any] = Field(default_factory=dict)


def open_secrets(settings: Settings) -> SecretsProvider:
    """The configured secrets backend, checked against the contract."""
    config = SecretsConfig.model_validate((settings.model_extra or {}).get("secrets", {}))
    return open_backend("secrets", config.backend, SecretsProvider, settings, **config.options)
