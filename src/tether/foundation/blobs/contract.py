"""Content-addressed storage for values too large for a journal row.

Shared by I2 and I1 and referred to by hash, never by foreign key, so each interface's tables
can move to their own database while large values stay put. Writing the same bytes twice
stores them once.

A value moved here is stored in its place as a reference, `{"$blob": address, "size": n}`:
the runtime's codec writes and resolves it, and the sweep finds what is still referred to.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

if TYPE_CHECKING:
    from tether.settings import Settings

BLOB_REF = '{"$blob":'  # how every reference's JSON text starts


def blob_ref(address: str, size: int) -> str:
    """The reference stored in place of a value of `size` bytes moved to `address`."""
    return json.dumps({"$blob": address, "size": size})


def blob_address(text: str | None) -> str | None:
    """The blob a stored value refers to, if it is a reference."""
    if text is None or not text.startswith(BLOB_REF):
        return None
    address = json.loads(text).get("$blob")
    return str(address) if address else None


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
