"""The one way tether finds a backend, for every interface.

A backend is a class registered under a name in the entry-point group `tether.<interface>`
(`tether.checkpoint: sqlite = ...`), so a third party ships one as its own package and tether
finds it with no change to its own code. Every interface loads the same way: the class is
looked up (the installed distributions are scanned once per process, for every interface at
once: a scan reads each distribution's metadata, ~3 ms here, and a process that starts a run
loads a dozen interfaces, two of them inside the first `Tether.run`), built
with `from_settings(settings, **options)`, and the object built is checked against the
interface's runtime-checkable Protocol. Each failure names the group and the backend, and says
what to do: install the missing distribution or extra, fix the options, fix the backend.

Interfaces that store rows choose their backend from their database URL by one rule,
`backend_for_url`: the backend named for the URL's scheme.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, EntryPoints, entry_points
from typing import Any, Protocol, TypeVar

from tether.errors import (
    BackendContractError,
    BackendNotFound,
    BackendUnavailable,
    ConfigurationError,
    NoBackendForUrl,
)
from tether.settings import Settings, redact_dsn

T = TypeVar("T")

# libpq takes both spellings; the backends are registered as "postgres".
_SCHEME_ALIASES = {"postgresql": "postgres"}


def backend_names(interface: str) -> list[str]:
    """Every backend installed for the interface, by name."""
    return sorted(_entry_points(interface))


def backend_for_url(interface: str, url: str, *, database: str | None = None) -> str:
    """The backend of `tether.<interface>` that serves `url`: the one named for its scheme
    (`sqlite:///...` sqlite, `postgresql://...` postgres, `memory://` memory, `mysql://...` a
    third party's mysql). `database` is the name in `TETHER_<DATABASE>_DATABASE_URL`, for the
    message when no backend serves the URL (default: the interface's own name)."""
    scheme = url.partition(":")[0].lower()
    name = _SCHEME_ALIASES.get(scheme, scheme)
    known = backend_names(interface)
    if name not in known:
        env = f"TETHER_{(database or interface).upper()}_DATABASE_URL"
        raise NoBackendForUrl(f"tether.{interface}", redact_dsn(url), scheme, known, env)
    return name


def open_backend(
    interface: str, name: str, contract: type[T], settings: Settings, **options: Any
) -> T:
    """Build the backend registered as `name` in `tether.<interface>` and check it against
    `contract`."""
    group = f"tether.{interface}"
    backend = backend_class(interface, name)
    try:
        built = backend.from_settings(settings, **options)
    except ImportError as e:  # a vendor SDK is imported lazily, when the backend is built
        entry = _entry_points(interface)[name]
        raise BackendUnavailable(group, name, str(e), _install_hint(entry)) from e
    except TypeError as e:
        # a backend's from_settings passes its options to its constructor: a wrong option
        # surfaces here as "unexpected keyword argument"
        raise ConfigurationError(
            f"backend {name!r} in {group!r} could not be built from its options "
            f"({', '.join(options) or 'none'}): {e}; check its section of tether.toml"
        ) from e
    if not isinstance(built, contract):
        missing = [m for m in dir(contract) if not m.startswith("_") and not hasattr(built, m)]
        what = f"a {type(built).__name__}"
        raise BackendContractError(group, name, contract.__name__, what, missing)
    return built


@cache
def backend_class(interface: str, name: str) -> Any:
    """The class registered as `name` in `tether.<interface>`, imported once."""
    group = f"tether.{interface}"
    found = _entry_points(interface)
    if name not in found:
        raise BackendNotFound(group, name, sorted(found))
    entry = found[name]
    try:
        backend = entry.load()
    except ImportError as e:
        raise BackendUnavailable(group, name, str(e), _install_hint(entry)) from e
    except Exception as e:
        raise ConfigurationError(
            f"backend {name!r} in {group!r} failed to import: {type(e).__name__}: {e}; "
            f"its entry point is {entry.value!r}"
        ) from e
    if not callable(getattr(backend, "from_settings", None)):
        raise BackendContractError(
            group, name, "the backend contract", entry.value, ["from_settings"]
        )
    return backend


class _Installed(Protocol):
    """What `entry_points()` answers (a `SelectableGroups` on 3.11, `EntryPoints` after)."""

    def select(self, *, group: str) -> EntryPoints: ...


@cache
def _installed() -> _Installed:
    return entry_points()


@cache
def _entry_points(interface: str) -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in _installed().select(group=f"tether.{interface}")}


def _install_hint(entry: EntryPoint) -> str:
    """`pip install 'tether[postgres]'` when the backend's distribution has an extra named for
    it (tether's own vendor backends do), else a reinstall of that distribution."""
    dist = entry.dist
    if dist is None:
        return "install the package that provides it"
    project = dist.metadata["Name"]
    extras = dist.metadata.get_all("Provides-Extra") or []
    if entry.name in extras:
        return f"install its extra: pip install '{project}[{entry.name}]'"
    return f"reinstall {project}, which provides it"
