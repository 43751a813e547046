"""Which I8 backend verifies identities, from the `[identity]` table of tether.toml.

    [identity]
    backend = "jwt"                 # the default
    key = "TETHER_JWT_KEY"          # name of the I7 secret that signs (HS256 key or RS256 PEM)
    public_key = "TETHER_JWT_PUB"   # optional: name of an I7 secret with an RS256 public key
    options = { algorithm = "RS256", audience = "tether", ttl_seconds = 3600 }

Keys are named, never written here: they come from I7, so they are redacted like any secret.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tether.errors import BackendNotFound, ConfigurationError
from tether.foundation.identity.contract import IdentityProvider
from tether.foundation.secrets.contract import SecretsProvider
from tether.settings import Settings

GROUP = "tether.identity"


class IdentityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: str = "jwt"
    key: str | None = "TETHER_JWT_KEY"
    public_key: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)


def open_identity(settings: Settings, secrets: SecretsProvider) -> IdentityProvider:
    """The configured identity backend, its keys fetched through I7."""
    config = IdentityConfig.model_validate((settings.model_extra or {}).get("identity", {}))
    found = {ep.name: ep for ep in entry_points(group=GROUP)}
    if config.backend not in found:
        raise BackendNotFound(GROUP, config.backend, sorted(found))
    keys = {
        "key": secrets.get(config.key) if config.key else None,
        **({"public_key": secrets.get(config.public_key)} if config.public_key else {}),
    }
    try:
        provider = found[config.backend].load()(**keys, **config.options)
    except (ImportError, TypeError) as e:
        raise ConfigurationError(f"identity backend {config.backend!r} ({GROUP}): {e}") from e
    if not isinstance(provider, IdentityProvider):
        raise ConfigurationError(
            f"entry point {config.backend!r} in group {GROUP!r} built "
            f"{type(provider).__name__}, which lacks `issue` and `verify`"
        )
    return provider
