"""Finds a backend by name through entry points (group `tether.<interface>`), so a third party
can ship one as its own package, and checks what it loaded against the interface's contract."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from tether.errors import BackendNotFound, ConfigurationError


def load_backend(interface: str, name: str, contract: type[Any]) -> Any:
    """The backend class registered as `name` in `tether.<interface>`."""
    group = f"tether.{interface}"
    found = {ep.name: ep for ep in entry_points(group=group)}
    if name not in found:
        raise BackendNotFound(group, name, sorted(found))
    try:
        backend = found[name].load()
    except Exception as e:
        raise ConfigurationError(f"backend {name!r} in {group!r} failed to import: {e}") from e
    missing = [m for m in _methods(contract) if not callable(getattr(backend, m, None))]
    if missing:
        raise ConfigurationError(
            f"backend {name!r} in {group!r} does not implement the {contract.__name__} contract: "
            f"missing {', '.join(missing)}"
        )
    if not callable(getattr(backend, "from_settings", None)):
        raise ConfigurationError(f"backend {name!r} in {group!r} has no from_settings(settings)")
    return backend


def _methods(contract: type[Any]) -> list[str]:
    return [n for n, v in vars(contract).items() if callable(v) and not n.startswith("_")]
