"""Finding model backends by name through the `tether.models` entry-point group.

A third party ships a backend as its own package by declaring an entry point in this group; the
loader checks what it built against `ModelBackend` and names group and name when it does not fit.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from tether.errors import BackendNotFound, ConfigurationError
from tether.foundation.models.config import BackendConfig
from tether.foundation.models.contract import ModelBackend

GROUP = "tether.models"


def backend_factory(type_name: str) -> Callable[..., Any]:
    found = {ep.name: ep for ep in entry_points(group=GROUP)}
    if type_name not in found:
        raise BackendNotFound(GROUP, type_name, sorted(found))
    try:
        factory: Callable[..., Any] = found[type_name].load()
    except ImportError as e:
        raise ConfigurationError(
            f"model backend {type_name!r} (entry point group {GROUP!r}) cannot be imported: {e}; "
            f"install its extra, e.g. `pip install 'tether[{type_name}]'`"
        ) from e
    return factory


def build_backend(name: str, config: BackendConfig) -> ModelBackend:
    """Instantiate the configured backend `name`; its options go to the constructor."""
    type_name = config.type or name
    factory = backend_factory(type_name)
    try:
        backend = factory(**config.options)
    except TypeError as e:
        raise ConfigurationError(f"model_backends[{name!r}] ({type_name}): {e}") from e
    if not isinstance(backend, ModelBackend):
        raise ConfigurationError(
            f"entry point {type_name!r} in group {GROUP!r} built {type(backend).__name__}, "
            "which is not a ModelBackend (it needs `restricted_ok` and `async complete`)"
        )
    return backend
