"""A backend that answers from a list, in order: for tests and for replaying a known conversation.

Each reply is a string (a text answer), a `ModelResponse` (tool calls, a stop reason), a dict
of `ModelResponse` fields (as written in tether.toml), or an exception to raise on that call
(`ModelRetryableError(..., status=429, retry_after=2)` scripts a rate limit). Every request it
receives is kept in `requests`, so a test can assert what the router actually sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tether.errors import ModelFatalError
from tether.foundation.models.contract import ModelRequest, ModelResponse, StopReason
from tether.foundation.models.tokens import usage_for

if TYPE_CHECKING:
    from tether.settings import Settings


Reply = str | ModelResponse | dict[str, Any] | BaseException


class ScriptedBackend:
    """Deterministic replies from a list; runs out loudly rather than inventing an answer."""

    def __init__(
        self,
        replies: Sequence[Reply] = (),
        *,
        restricted_ok: bool = False,
        provider: str | None = "local",
    ) -> None:
        self._replies = list(replies)
        self.restricted_ok = restricted_ok
        self.provider = provider
        self.requests: list[ModelRequest] = []

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> ScriptedBackend:
        return cls(**options)

    def add(self, *replies: Reply) -> None:
        self._replies.extend(replies)

    async def complete(self, request: ModelRequest, model: str) -> ModelResponse:
        self.requests.append(request)
        if not self._replies:
            raise ModelFatalError(
                f"scripted backend has no reply left for call {len(self.requests)} "
                f"(task class {request.task_class!r}); script more replies"
            )
        reply = self._replies.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        if isinstance(reply, str):
            reply = ModelResponse(text=reply, model=model)
        elif isinstance(reply, dict):
            reply = ModelResponse.model_validate({"model": model, **reply})
        update: dict[str, Any] = {"model": reply.model or model, "provider": self.provider}
        if reply.tool_calls and reply.stop_reason is StopReason.END:
            update["stop_reason"] = StopReason.TOOL_CALLS
        if "usage" not in reply.model_fields_set:
            update["usage"] = usage_for(request, reply.text, list(reply.tool_calls))
        return reply.model_copy(update=update)
