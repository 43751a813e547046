"""I1 ToolRunner contract: what a tool declares, and what a lane must do to run it.

A tool is a plain function with a frozen `ToolDef` made by `@tool` (decorator.py). Its replay
class says what an interrupted call may do on resume; its persistence class picks the lane
that runs it. A lane runs one call in some sandbox (a subprocess, a bubblewrap namespace, a
vendor VM) and reports what happened as a `LaneResult`; it never touches `tool_call_results`
— the runner (runner.py) does, around the lane, so every lane gets the same replay rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from tether.errors import ToolArgumentError

if TYPE_CHECKING:
    from tether.settings import Settings


class ReplayClass(StrEnum):
    """What may happen to a call the worker died in the middle of."""

    PURE = "pure"  # no side effects: run it again
    IDEMPOTENT_WITH_KEY = "idempotent_with_key"  # run again with the same idempotency key
    UNSAFE_ON_REPLAY = "unsafe_on_replay"  # never run twice: a person decides


class PersistenceClass(StrEnum):
    """Where a tool's state lives between calls; it picks the lane."""

    EPHEMERAL = "ephemeral"  # nothing survives the call (D7: the default)
    PERSISTENT_SESSION = "persistent_session"  # a directory and a process for one run
    PERSISTENT_WORKSPACE = "persistent_workspace"  # a named directory kept across runs


class Limits(BaseModel):
    """Resources one call may use. The wall timeout lives on the ToolDef; these are enforced
    inside the sandbox (setrlimit), so the same numbers hold on every lane."""

    model_config = ConfigDict(frozen=True)

    cpu_seconds: int
    memory_mb: int
    open_files: int


@dataclass(frozen=True)
class ToolDef:
    """A tool as `@tool` declared it. `ref` (`module:qualname`) is how a sandbox imports it."""

    name: str
    description: str
    ref: str
    fn: Callable[..., Any] = field(repr=False, compare=False)
    replay: ReplayClass
    persistence: PersistenceClass
    timeout: float
    limits: Limits
    network: bool
    workspace: str | None
    takes_key: bool  # the signature has `idempotency_key`: the runner fills it
    args_model: type[BaseModel] = field(repr=False, compare=False)
    result_adapter: TypeAdapter[Any] = field(repr=False, compare=False)
    env: tuple[str, ...] = ()  # variables passed through to the tool's scrubbed environment
    # I6: a call runs only with an approval bound to (run, step, tool, args hash)
    requires_approval: bool = False
    approvers: tuple[str, ...] = ()

    def json_schema(self) -> dict[str, Any]:
        """What a model is offered: the tool's name, what it does, and its parameters."""
        parameters = self.args_model.model_json_schema()
        parameters.pop("title", None)
        return {"name": self.name, "description": self.description, "parameters": parameters}

    def validate_args(self, args: dict[str, Any]) -> dict[str, Any]:
        """The arguments as JSON-ready values, or ToolArgumentError naming every bad field."""
        try:
            model = self.args_model.model_validate(args)
        except ValidationError as e:
            raise ToolArgumentError(
                self.name, [dict(err) for err in e.errors(include_url=False, include_input=False)]
            ) from None
        return model.model_dump(mode="json")

    def decode_result(self, text: str) -> Any:
        """A stored result (JSON text) as the type the tool's signature promises."""
        return self.result_adapter.validate_json(text)


@dataclass(frozen=True)
class ToolInvocation:
    """One call: what the runtime asks the runner for, and (with the arguments validated and
    the key filled in by the runner) what the runner hands a lane."""

    run_id: str
    step_id: str
    attempt: int
    tool: ToolDef
    args: dict[str, Any]
    idempotency_key: str | None = None
    approval: str | None = None  # the I6 request releasing this call, spent on its intent row


class ToolFailure(BaseModel):
    """Why a call produced no result. `interrupted` means the call was stopped from outside
    (a limit, the wall timeout, a dead process): the outside world may have seen part of it."""

    model_config = ConfigDict(frozen=True)

    type: str
    message: str
    interrupted: bool = False
    limit: str | None = None  # "memory", "cpu" or "timeout" when a limit stopped it


@dataclass(frozen=True)
class LaneResult:
    """What a lane reports: the result as JSON text, or a failure."""

    value: str | None = None
    failure: ToolFailure | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None


@runtime_checkable
class Lane(Protocol):
    """Runs calls of one persistence class."""

    async def run(self, invocation: ToolInvocation) -> LaneResult: ...


@runtime_checkable
class LaneBackend(Protocol):
    """What the `tether.tools` entry-point group names: a sandbox technology that makes lanes.
    `from_settings(settings)` is where a backend checks it can work at all (bwrap starts, an SDK
    and its key are present), so a bad configuration fails when the worker starts, not at a
    call."""

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> Self:
        """How `tether.foundation.loader` builds it: from the settings (its database URL, the
        data directory) and the options of its table in tether.toml, where it has one."""
        ...

    def lane(self, persistence: PersistenceClass) -> Lane:
        """The lane for that persistence class, or ConfigurationError if it has none."""
        ...

    async def park(self, run_id: str) -> None:
        """The run parked: stop what runs for it (a session process, a sandbox), keeping its
        state (a directory, a sandbox's disk) for the next call, which starts it again."""
        ...

    async def end_run(self, run_id: str) -> None:
        """The run ended: remove everything kept for it (workspaces outlive runs)."""
        ...

    async def close(self) -> None:
        """Stop every process and sandbox the backend started."""
        ...


@runtime_checkable
class LeaseBound(Protocol):
    """A backend whose tool processes run on this machine bounds them by their run's lease, so
    a call never goes on after another worker may have resumed the run. Both are called from
    the worker's heartbeat thread, so they return at once and are safe from any thread."""

    def renew(self, run_id: str, until: float) -> None:
        """The run is held until `until` (time.monotonic()): its calls in flight, and those it
        starts, stop themselves then unless renewed again, even if this worker is frozen."""
        ...

    def lease_lost(self, run_id: str) -> None:
        """Another worker may hold the run now: stop its calls in flight at once."""
        ...
