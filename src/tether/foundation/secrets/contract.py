"""I7 SecretsProvider: the only way provider keys and tool credentials enter tether.

A `Secret` never shows its value in repr, str or JSON, and registers that value with the
process-wide redactor as it is made, so whatever later prints it by mistake prints `***`.
Code that needs the value itself asks for it by name: `secret.reveal()`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from tether.foundation.secrets.redaction import MASK, REDACTOR

if TYPE_CHECKING:
    from tether.settings import Settings


class Secret:
    """A credential whose value stays out of every representation of it."""

    __slots__ = ("_value", "name")

    def __init__(self, name: str, value: str) -> None:
        REDACTOR.register(value)
        self.name = name
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.name!r}, {MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and (self.name, self._value) == (other.name, other._value)

    def __hash__(self) -> int:
        return hash((self.name, self._value))

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> Any:
        # In a pydantic model a Secret validates as itself and serialises as the mask.
        return core_schema.is_instance_schema(
            cls, serialization=core_schema.plain_serializer_function_ser_schema(lambda _: MASK)
        )


@runtime_checkable
class SecretsProvider(Protocol):
    """Looks credentials up by name; `SecretNotFound` names the name and where it looked."""

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> Self:
        """How `tether.foundation.loader` builds it: from the settings (its database URL, the
        data directory) and the options of its table in tether.toml, where it has one."""
        ...

    def get(self, name: str) -> Secret: ...
