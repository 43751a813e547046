"""Which eval store I5 uses: by the scheme of its database URL (`TETHER_EVALS_DATABASE_URL`,
else `TETHER_DATABASE_URL`, else the SQLite file in the data directory), found through the
`tether.evals` entry points so a third party can ship one."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from tether.errors import BackendNotFound, ConfigurationError
from tether.foundation.evals.contract import EvalStore

if TYPE_CHECKING:
    from tether.settings import Settings

GROUP = "tether.evals"
_SCHEMES = {"sqlite": "sqlite", "postgresql": "postgres", "postgres": "postgres",
            "memory": "memory"}  # fmt: skip


def open_eval_store(settings: Settings) -> EvalStore:
    url = settings.database_url_for("evals")
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    name = _SCHEMES.get(scheme)
    found = {ep.name: ep for ep in entry_points(group=GROUP)}
    if name is None or name not in found:
        raise BackendNotFound(GROUP, name or scheme, sorted(found))
    try:
        factory: Any = found[name].load()
    except ImportError as e:
        raise ConfigurationError(
            f"eval store {name!r} (group {GROUP!r}) cannot be imported: {e}; "
            f"install its extra, e.g. `pip install 'tether[{name}]'`"
        ) from e
    store = factory.from_settings(settings)
    if not isinstance(store, EvalStore):
        raise ConfigurationError(
            f"entry point {name!r} in group {GROUP!r} built {type(store).__name__}, "
            "which is not an EvalStore"
        )
    return store
