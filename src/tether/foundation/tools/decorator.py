"""`@tool`: declare a function as a tool, checked when the decorator is applied.

The decorator refuses at import time anything the runner could only discover at a call: no
replay class, a signature a model cannot be offered as a JSON schema, a function a sandbox
cannot import by `module:qualname`. It returns the frozen `ToolDef` (as `@workflow` returns
its `WorkflowDef`); running the function is the ToolRunner's business, never the caller's.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, get_type_hints

from pydantic import BaseModel, ConfigDict, TypeAdapter, create_model
from pydantic.errors import PydanticUserError

from tether.errors import ConfigurationError
from tether.foundation.tools.contract import Limits, PersistenceClass, ReplayClass, ToolDef
from tether.foundation.tools.registry import tools

_E = TypeVar("_E", ReplayClass, PersistenceClass)

KEY_PARAM = "idempotency_key"
_WORKSPACE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_WHY_REPLAY = (
    "a tool may have side effects, so it must say what may happen if the worker dies "
    "mid-call: replay='pure' (safe to run again), 'idempotent_with_key' (run again with the "
    "same idempotency_key, which it forwards to the outside system) or 'unsafe_on_replay' "
    "(never run twice; a person decides)"
)


def tool(
    bare: Callable[..., Any] | None = None,
    /,
    *,
    replay: ReplayClass | str | None = None,
    persistence: PersistenceClass | str = PersistenceClass.EPHEMERAL,
    timeout: float = 60.0,
    cpu_seconds: int | None = None,
    memory_mb: int = 1024,
    open_files: int = 256,
    network: bool = False,
    workspace: str | None = None,
    name: str | None = None,
    env: Sequence[str] = (),
    requires_approval: bool = False,
    approvers: Sequence[str] = (),
) -> Callable[[Callable[..., Any]], ToolDef]:
    """Declare a sync or async function as a tool. `replay` has no default on purpose.

    `cpu_seconds` defaults to the wall timeout rounded up; `network` is honoured by sandboxed
    lanes (the local lane cannot take it away); `workspace` names the directory of a
    `persistent_workspace` tool. `requires_approval` makes every call wait for a person's
    approval of its exact arguments (I6) from `approvers` (identities or `role:<name>`; a call
    may name others: `ctx.tool(t, approval={...})`).

    A tool runs with a scrubbed environment: nothing of the worker's is inherited (no API
    keys, no database URLs) but PATH, the import path and the locale. `env` names variables
    to pass through from the worker's environment, read at each call; their values are struck
    from spans, logs and journal entries as secrets are.
    """
    if bare is not None:  # `@tool` without parentheses
        raise ConfigurationError(
            f"@tool on {getattr(bare, '__qualname__', bare)!r} needs arguments: {_WHY_REPLAY}"
        )
    if replay is None:
        raise ConfigurationError(f"@tool {name or ''} declares no replay class: {_WHY_REPLAY}")
    replay_class = _choice(ReplayClass, replay, "replay", name)
    persistence_class = _choice(PersistenceClass, persistence, "persistence", name)
    limits = _limits(name, timeout, cpu_seconds, memory_mb, open_files)
    _check_workspace(name, persistence_class, workspace)
    passed = _env_names(name, env)

    def decorate(fn: Callable[..., Any]) -> ToolDef:
        tool_name = name or fn.__name__
        if not inspect.isfunction(fn):
            raise ConfigurationError(f"@tool {tool_name!r}: expected a function, got {fn!r}")
        if fn.__module__ == "__main__" or "<" in fn.__qualname__:
            raise ConfigurationError(
                f"@tool {tool_name!r}: {fn.__module__}.{fn.__qualname__} must be defined at the "
                "top level of an importable module, because sandboxes import it by name"
            )
        args_model, takes_key = _args_model(tool_name, fn, replay_class)
        hints = get_type_hints(fn, include_extras=True)
        definition = ToolDef(
            name=tool_name,
            description=_first_line(inspect.getdoc(fn)),
            ref=f"{fn.__module__}:{fn.__qualname__}",
            fn=fn,
            replay=replay_class,
            persistence=persistence_class,
            timeout=float(timeout),
            limits=limits,
            network=network,
            workspace=workspace,
            takes_key=takes_key,
            args_model=args_model,
            result_adapter=TypeAdapter(hints.get("return", Any)),
            env=passed,
            requires_approval=requires_approval,
            approvers=(approvers,) if isinstance(approvers, str) else tuple(approvers),
        )
        tools.register(definition)
        return definition

    return decorate


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SET_BY_TETHER = {"PATH", "PYTHONPATH", "HOME", "TMPDIR", "PYTHONDONTWRITEBYTECODE"}


def _env_names(name: str | None, env: Sequence[str]) -> tuple[str, ...]:
    label = f"@tool {name!r}" if name else "@tool"
    if isinstance(env, str):
        raise ConfigurationError(f'{label}: env takes a list of names, e.g. env=["{env}"]')
    for var in env:
        if not isinstance(var, str) or not _ENV_NAME.fullmatch(var):
            raise ConfigurationError(f"{label}: env name {var!r} is not a variable name")
        if var in _SET_BY_TETHER:
            raise ConfigurationError(
                f"{label}: env cannot pass {var}; tether sets it for every tool process"
            )
    return tuple(dict.fromkeys(env))


def _choice(enum: type[_E], value: _E | str, what: str, name: str | None) -> _E:
    label = f"@tool {name!r}" if name else "@tool"
    try:
        return enum(value)
    except ValueError:
        choices = ", ".join(repr(m.value) for m in enum)
        raise ConfigurationError(f"{label}: {what}={value!r} is not one of {choices}") from None


def _limits(
    name: str | None, timeout: float, cpu: int | None, memory_mb: int, open_files: int
) -> Limits:
    cpu_seconds = math.ceil(timeout) if cpu is None else cpu
    for what, value in (
        ("timeout", timeout),
        ("cpu_seconds", cpu_seconds),
        ("memory_mb", memory_mb),
        ("open_files", open_files),
    ):
        if not value > 0:
            raise ConfigurationError(f"@tool {name or ''}: {what} must be positive, got {value!r}")
    return Limits(cpu_seconds=cpu_seconds, memory_mb=memory_mb, open_files=open_files)


def _check_workspace(
    name: str | None, persistence: PersistenceClass, workspace: str | None
) -> None:
    if persistence is PersistenceClass.PERSISTENT_WORKSPACE:
        if workspace is None or not _WORKSPACE_NAME.match(workspace):
            raise ConfigurationError(
                f"@tool {name or ''}: a persistent_workspace tool needs workspace='<name>' "
                f"(letters, digits, '_', '.', '-'; got {workspace!r}): it names the directory "
                "kept across runs"
            )
    elif workspace is not None:
        raise ConfigurationError(
            f"@tool {name or ''}: workspace={workspace!r} only applies to persistence="
            "'persistent_workspace'"
        )


def _args_model(
    tool_name: str, fn: Callable[..., Any], replay: ReplayClass
) -> tuple[type[BaseModel], bool]:
    """A pydantic model of the parameters a caller (or a model) supplies."""
    hints = get_type_hints(fn, include_extras=True)
    fields: dict[str, Any] = {}
    takes_key = False
    for p in inspect.signature(fn).parameters.values():
        where = f"@tool {tool_name!r}: parameter {p.name!r}"
        if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            raise ConfigurationError(f"{where} must be passable by keyword (no *args, **kwargs, /)")
        if p.name == KEY_PARAM:
            if replay is not ReplayClass.IDEMPOTENT_WITH_KEY:
                raise ConfigurationError(
                    f"{where} is filled by the runner only for replay='idempotent_with_key'"
                )
            takes_key = True
            continue
        if p.name not in hints:
            raise ConfigurationError(f"{where} needs a type annotation: it becomes the schema")
        default = ... if p.default is p.empty else p.default
        fields[p.name] = (hints[p.name], default)
    try:
        model: type[BaseModel] = create_model(
            f"{tool_name}_args", __config__=ConfigDict(extra="forbid"), **fields
        )
        model.model_json_schema()
    except (PydanticUserError, TypeError) as e:
        raise ConfigurationError(
            f"@tool {tool_name!r}: its parameters cannot be offered as a JSON schema: {e}"
        ) from e
    return model, takes_key


def _first_line(doc: str | None) -> str:
    return next((line.strip() for line in (doc or "").splitlines() if line.strip()), "")
