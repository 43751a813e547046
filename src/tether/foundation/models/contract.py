"""I12 ModelRouter contract: the one request/response shape every model backend speaks.

Agent code builds a `ModelRequest` and gets a `ModelResponse`; no vendor type crosses this line.
Everything here is a pydantic model that round-trips through JSON, because the runtime journals
requests, responses and routing decisions so that a resumed run never pays for a call twice.

A backend implements `ModelBackend.complete` and maps its vendor's failures to
`ModelRetryableError` (429, 500, 529, network: the router retries or falls back) or
`ModelFatalError` (the request itself was refused: the router stops).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal, Protocol, Self, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from tether.settings import Settings


class Sensitivity(StrEnum):
    """How sensitive the data in a request is; `restricted` only goes to approved backends."""

    PUBLIC = "public"
    INTERNAL = "internal"
    RESTRICTED = "restricted"


class StopReason(StrEnum):
    """Why the model stopped, in words that mean the same for every vendor."""

    END = "end"  # a natural end of turn
    TOOL_CALLS = "tool_calls"  # the model wants tool results before it goes on
    MAX_TOKENS = "max_tokens"
    STOP_SEQUENCE = "stop_sequence"
    REFUSAL = "refusal"  # a content filter or refusal stopped it
    OTHER = "other"


class ToolCall(BaseModel):
    """The model asks for one tool run; `id` ties the tool's result message back to it."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class Message(BaseModel):
    """One turn of a conversation.

    `tool` messages carry one tool result in `content` (text; JSON if structured) and the
    `tool_call_id` of the call they answer. `assistant` messages may carry `tool_calls`.
    """

    model_config = ConfigDict(frozen=True)

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None  # the tool's name, on a tool message

    @classmethod
    def system(cls, content: str) -> Message:
        return cls(role="system", content=content)

    @classmethod
    def user(cls, content: str) -> Message:
        return cls(role="user", content=content)

    @classmethod
    def assistant(cls, content: str = "", tool_calls: list[ToolCall] | None = None) -> Message:
        return cls(role="assistant", content=content, tool_calls=tool_calls or [])

    @classmethod
    def tool(cls, call: ToolCall, content: str) -> Message:
        return cls(role="tool", content=content, tool_call_id=call.id, name=call.name)


class ToolSpec(BaseModel):
    """A tool offered to the model; `parameters` is the tool's JSON schema (an object schema)."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class Usage(BaseModel):
    """Tokens of one call, counted as genai-prices counts them: `input_tokens` is every input
    token, cached ones included; the cache fields say how many of those were cache reads and
    writes (priced differently)."""

    model_config = ConfigDict(frozen=True)

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


class ModelRequest(BaseModel):
    """What agent code asks for; `task_class` and `sensitivity` pick the route, not the caller."""

    model_config = ConfigDict(frozen=True)

    task_class: str
    messages: list[Message]
    tools: list[ToolSpec] = Field(default_factory=list)
    sensitivity: Sensitivity = Sensitivity.INTERNAL
    max_tokens: int = 1024
    temperature: float | None = None


class ModelResponse(BaseModel):
    """A backend's answer, normalized; `provider` is the price list id I11 looks it up under."""

    model_config = ConfigDict(frozen=True)

    text: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    stop_reason: StopReason = StopReason.END
    usage: Usage = Field(default_factory=Usage)
    model: str  # as the provider reported it: often more specific than the route's name
    provider: str | None = None

    def as_message(self) -> Message:
        """The assistant turn to append to the conversation before sending tool results."""
        return Message.assistant(self.text, list(self.tool_calls))


class Route(BaseModel):
    """One place a call may go: a configured backend, a model it serves, and the model's family.

    The family is what INV-3 compares: a judge must not be of the agent's family.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: str
    model: str
    family: str

    def __str__(self) -> str:
        return f"{self.backend}/{self.model}"


# ok: answered; retried: rate limited, same route again; failed: moved on to the next route;
# skipped: a guard refused the route (rate limit, open circuit); fatal: the call stopped here.
AttemptOutcome = Literal["ok", "retried", "failed", "skipped", "fatal"]


class AttemptRecord(BaseModel):
    """What happened on one try of one route, journaled so an operator can see why a route won."""

    model_config = ConfigDict(frozen=True)

    backend: str
    model: str
    family: str
    attempt: int  # 1-based, per route
    outcome: AttemptOutcome
    error_type: str | None = None
    error: str | None = None
    retry_after: float | None = None  # seconds the router waited before the next try


class RouteDecision(BaseModel):
    """The route that answered and every attempt before it (failed ones first, in order)."""

    model_config = ConfigDict(frozen=True)

    backend: str
    model: str
    family: str
    attempts: list[AttemptRecord] = Field(default_factory=list)

    @property
    def fell_back(self) -> bool:
        """True when the answering route was not the first one tried."""
        first = self.attempts[0] if self.attempts else None
        return first is not None and (first.backend, first.model) != (self.backend, self.model)


class RoutedResponse(BaseModel):
    """What the router returns: the answer and how it was reached, journaled together so a
    replay returns both without calling any backend."""

    model_config = ConfigDict(frozen=True)

    response: ModelResponse
    decision: RouteDecision


class RouteAttempt(BaseModel):
    """The one input object the guard hook gets before each backend attempt."""

    model_config = ConfigDict(frozen=True)

    request: ModelRequest
    route: Route
    attempt: int  # 1-based, per route
    position: int  # index of the route in the plan


@runtime_checkable
class ModelBackend(Protocol):
    """A place model calls go. `restricted_ok` is the backend's own claim that restricted data
    may be sent to it (a local model: yes; a hosted API: no unless configured so)."""

    restricted_ok: bool

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> Self:
        """How `tether.foundation.loader` builds it: from the settings (its database URL, the
        data directory) and the options of its table in tether.toml, where it has one."""
        ...

    async def complete(self, request: ModelRequest, model: str) -> ModelResponse:
        """Answer the request with `model`, or raise ModelRetryableError / ModelFatalError."""
        ...


@runtime_checkable
class TokenSink(Protocol):
    """Where a streamed call's tokens go as they arrive (the runtime writes them to a run's
    stream). `attempt` is called before every backend attempt, so a sink can mark a restart
    before the first token of an attempt that follows one which already wrote tokens."""

    def attempt(self) -> None: ...

    async def token(self, text: str) -> None: ...


@runtime_checkable
class StreamingBackend(Protocol):
    """A backend that can hand over its answer's text as it is generated. A backend without
    it still serves a streamed call: its whole text is one token, after the answer."""

    async def stream(
        self, request: ModelRequest, model: str, on_token: Callable[[str], Awaitable[None]]
    ) -> ModelResponse:
        """Answer as `complete` does, awaiting `on_token` with each piece of text first."""
        ...
