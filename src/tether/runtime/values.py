"""Values as JSON through pydantic, with large ones moved to the blob store.

The workflow always sees the decoded journal form of a value, on the first run as on replay,
so control flow cannot depend on a difference between "live" and "replayed" objects.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any, get_type_hints

from pydantic import TypeAdapter
from pydantic_core import PydanticSerializationError

from tether.foundation.blobs.contract import BLOB_REF, BlobStore, blob_ref

_ANY: TypeAdapter[Any] = TypeAdapter(Any)
_adapters: dict[Any, TypeAdapter[Any]] = {}
# Not float: NaN and infinities are written as null.
_SAME_AFTER_JSON = frozenset({str, int, bool, type(None)})


class UnserialisableValue(TypeError):
    """A result that cannot be turned into JSON; the step fails at once, naming the type."""


def adapter_for(tp: Any) -> TypeAdapter[Any]:
    if tp is Any or tp is inspect.Signature.empty:
        return _ANY
    found = _adapters.get(tp)
    if found is None:
        found = _adapters[tp] = TypeAdapter(tp)
    return found


def return_adapter(fn: Callable[..., Any]) -> TypeAdapter[Any]:
    """The adapter for what `fn` returns, from its annotation (Any when it has none)."""
    try:
        hint = get_type_hints(fn).get("return", Any)
    except Exception:  # annotations that can't be resolved: treat the value as plain JSON
        hint = Any
    return adapter_for(hint)


class Codec:
    """Calls the adapters' serializer and validator directly: `TypeAdapter.dump_json` and
    `validate_json` spend more in their keyword plumbing than in the work, three times a step."""

    def __init__(self, blobs: BlobStore | None, threshold: int) -> None:
        self.blobs = blobs
        self.threshold = threshold

    def encode(self, value: Any, adapter: TypeAdapter[Any] = _ANY) -> str:
        try:
            raw = adapter.serializer.to_json(value)
        except PydanticSerializationError as e:
            raise UnserialisableValue(
                f"a value of type {type(value).__qualname__} cannot be stored as JSON: {e}"
            ) from e
        if len(raw) > self.threshold and self.blobs is not None:
            return blob_ref(self.blobs.put(raw), len(raw))
        return raw.decode()

    def decode(self, text: str, adapter: TypeAdapter[Any] = _ANY) -> Any:
        return adapter.validator.validate_json(self.resolve(text))

    def journal_form(self, value: Any, text: str, adapter: TypeAdapter[Any] = _ANY) -> Any:
        """What a replay of `text` (just encoded from `value`) returns: `value` itself when
        it is a str, int, bool or None read back by the Any adapter or its own type's, whose
        JSON reads back equal and of the same type, so the first run skips the decode."""
        kind = type(value)
        if kind in _SAME_AFTER_JSON and (adapter is _ANY or adapter is _adapters.get(kind)):
            return value
        return self.decode(text, adapter)

    def resolve(self, text: str) -> str:
        """The JSON text itself, fetched from the blob store when `text` is a reference."""
        if text.startswith(BLOB_REF) and self.blobs is not None:
            ref = json.loads(text)
            return self.blobs.get(ref["$blob"]).decode()
        return text

    def encode_args(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
        """Arguments for inspection only: anything unserialisable is shown by its repr."""
        if not args and not kwargs:
            return None
        payload: Any = list(args) if not kwargs else {"args": list(args), "kwargs": kwargs}
        return self.encode_lenient(payload)

    def encode_lenient(self, value: Any) -> str:
        raw = _ANY.serializer.to_json(value, fallback=repr)
        if len(raw) > self.threshold and self.blobs is not None:
            return blob_ref(self.blobs.put(raw), len(raw))
        return raw.decode()
