"""The `anthropic` backend: Claude through the official SDK's Messages API, with tool use.

The SDK is imported when the backend is built, never at tether's import (INV-1), and its
exceptions become ModelRetryableError / ModelFatalError here (see `failures`). The SDK's own
retries are off by default: the router retries and falls back, and journals every attempt, which
it could not do if the SDK retried out of sight.

Normalization: system messages become the `system` parameter; consecutive tool results are
sent as one user turn of `tool_result` blocks, as the Messages API requires.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from tether.errors import ConfigurationError
from tether.foundation.models.backends.failures import network_error, status_error
from tether.foundation.models.contract import (
    Message,
    ModelRequest,
    ModelResponse,
    StopReason,
    ToolCall,
    Usage,
)

if TYPE_CHECKING:
    from tether.settings import Settings


NAME = "anthropic"
_STOP = {
    "end_turn": StopReason.END,
    "tool_use": StopReason.TOOL_CALLS,
    "max_tokens": StopReason.MAX_TOKENS,
    "stop_sequence": StopReason.STOP_SEQUENCE,
    "refusal": StopReason.REFUSAL,
}


def _blocks(message: Message) -> list[dict[str, Any]]:
    if message.role == "tool":
        return [
            {"type": "tool_result", "tool_use_id": message.tool_call_id, "content": message.content}
        ]
    blocks: list[dict[str, Any]] = []
    if message.content:
        blocks.append({"type": "text", "text": message.content})
    blocks.extend(
        {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
        for c in message.tool_calls
    )
    return blocks


def to_messages(messages: list[Message]) -> tuple[str, list[dict[str, Any]]]:
    """(system prompt, Messages API turns), merging consecutive turns of the same role."""
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        role = "assistant" if message.role == "assistant" else "user"
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(_blocks(message))
        else:
            turns.append({"role": role, "content": _blocks(message)})
    return system, turns


def from_response(raw: Any) -> ModelResponse:
    texts = [b.text for b in raw.content if b.type == "text"]
    calls = [
        ToolCall(id=b.id, name=b.name, arguments=dict(b.input or {}))
        for b in raw.content
        if b.type == "tool_use"
    ]
    cache_read = raw.usage.cache_read_input_tokens or 0
    cache_write = raw.usage.cache_creation_input_tokens or 0
    return ModelResponse(
        text="".join(texts),
        tool_calls=calls,
        stop_reason=_STOP.get(raw.stop_reason or "", StopReason.OTHER),
        usage=Usage(
            # Anthropic's input_tokens leaves out cached tokens; tether's count includes them.
            input_tokens=raw.usage.input_tokens + cache_read + cache_write,
            output_tokens=raw.usage.output_tokens,
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
        ),
        model=raw.model,
        provider=NAME,
    )


class AnthropicBackend:
    """Claude models; the API key is read from the environment variable `api_key_env`."""

    restricted_ok = False

    def __init__(
        self,
        *,
        api_key_env: str = "ANTHROPIC_API_KEY",
        base_url: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 0,
    ) -> None:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise ConfigurationError(
                f"the anthropic model backend needs an API key in ${api_key_env}; set it, or "
                "route these task classes to another backend in model_routes"
            )
        import anthropic

        self._sdk = anthropic
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries
        )

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> AnthropicBackend:
        """Options from `model_backends[name]`, as the constructor takes them."""
        return cls(**options)

    async def complete(self, request: ModelRequest, model: str) -> ModelResponse:
        system, turns = to_messages(request.messages)
        params: dict[str, Any] = {
            "model": model,
            "max_tokens": request.max_tokens,
            "messages": turns,
        }
        if system:
            params["system"] = system
        if request.tools:
            params["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters}
                for t in request.tools
            ]
        if request.temperature is not None:
            params["temperature"] = request.temperature
        sdk = self._sdk
        try:
            raw = await self._client.messages.create(**params)
        except sdk.APIStatusError as e:
            raise status_error(NAME, e.status_code, e.message, e.response.headers) from e
        except (sdk.APIConnectionError, sdk.APITimeoutError) as e:
            raise network_error(NAME, e) from e
        return from_response(raw)

    async def aclose(self) -> None:
        await self._client.close()
