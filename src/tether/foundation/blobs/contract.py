"""Content-addressed storage for values too large for a journal row.

Shared by I2 and I1 and referred to by hash, never by foreign key, so each interface's tables
can move to their own database while large values stay put. Writing the same bytes twice
stores them once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

if TYPE_CHECKING:
    from tether.settings import Settings


@runtime_checkable
class BlobStore(Protocol):
    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> Self:
        """How `tether.foundation.loader` builds it: from the settings (its database URL, the
        data directory) and the options of its table in tether.toml, where it has one."""
        ...

    def put(self, data: bytes) -> str:
        """Store the bytes (once) and return their address, `sha256:<hex>`."""
        ...

    def get(self, address: str) -> bytes:
        """The bytes at the address; KeyError if absent."""
        ...

    def delete(self, address: str) -> int:
        """Remove the blob; returns bytes freed (0 if it was absent)."""
        ...

    def addresses(self) -> list[tuple[str, float, int]]:
        """Every stored blob as (address, created_at, size), for the sweep."""
        ...
