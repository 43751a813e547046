"""I8 IdentityProvider: who is calling, as a verified `Identity` that I9 rules can match.

A caller (a person or a service starting runs) and an agent (a run calling tools on its own
behalf) carry the same kind of token; `kind` tells them apart so a policy can treat them
differently. A run stores the `Identity` of whoever started it, so every guarded call inside
the run is judged as that caller's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, Self, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from tether.settings import Settings


IdentityKind = Literal["caller", "agent"]


class Identity(BaseModel):
    model_config = ConfigDict(frozen=True)

    subject: str
    kind: IdentityKind = "caller"
    roles: tuple[str, ...] = ()
    claims: dict[str, Any] = Field(default_factory=dict)  # every verified claim, for rules


@runtime_checkable
class IdentityProvider(Protocol):
    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> Self:
        """How `tether.foundation.loader` builds it: from the settings (its database URL, the
        data directory) and the options of its table in tether.toml, where it has one."""
        ...

    def issue(
        self,
        subject: str,
        *,
        kind: IdentityKind = "caller",
        roles: Sequence[str] = (),
        ttl_seconds: float | None = None,
    ) -> str:
        """A signed token for `subject`, valid `ttl_seconds` (None: the provider's default)."""
        ...

    def verify(self, token: str) -> Identity:
        """The token's identity; `IdentityError` says if it was bad, expired or misaddressed."""
        ...
