"""Which I8 backend verifies identities, from the `[identity]` table of tether.toml.

    [identity]
    backend = "jwt"                 # the default
    key = "TETHER_JWT_KEY"          # name of the I7 secret that signs (HS256 key or RS256 PEM)
    public_key = "TETHER_JWT_PUB"   # optional: name of an I7 secret with an RS256 public key
    options = { algorithm = "RS256", audience = "tether", ttl_seconds = 3600 }

Keys are named, never written here: they come from I7, so they are redacted like any secret.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tether.foundation.identity.contract import IdentityProvider
from tether.foundation.loader import backend_class, open_backend
from tether.foundation.secrets.contract import SecretsProvider
from tether.settings import Settings


class IdentityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: str = "jwt"
    key: str | None = "TETHER_JWT_KEY"
    public_key: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)


def open_identity(settings: Settings, secrets: SecretsProvider) -> IdentityProvider:
    """The configured identity backend, its keys fetched through I7."""
    config = IdentityConfig.model_validate((settings.model_extra or {}).get("identity", {}))
    backend_class("identity", config.backend)  # an unknown backend is named before keys are fetched
    keys = {
        "key": secrets.get(config.key) if config.key else None,
        **({"public_key": secrets.get(config.public_key)} if config.public_key else {}),
    }
    return open_backend(
        "identity", config.backend, IdentityProvider, settings, **keys, **config.options
    )
