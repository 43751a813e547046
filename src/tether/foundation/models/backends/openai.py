"""The `openai` backend: Chat Completions with tools through the official SDK.

With `base_url` it serves any OpenAI-compatible server (vLLM, Ollama, OpenRouter, a LiteLLM
proxy); such a server often needs no key, so a missing key is only an error against OpenAI
itself. `provider` names the price list I11 looks the model up in (`openai` by default; e.g.
`openrouter`), since the same model name costs differently at different hosts.

The SDK is imported when the backend is built (INV-1), its own retries are off by default (the
router retries and journals each attempt), and its exceptions become tether's errors here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from tether.errors import ConfigurationError, ModelRetryableError
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


NAME = "openai"
_STOP = {
    "stop": StopReason.END,
    "tool_calls": StopReason.TOOL_CALLS,
    "function_call": StopReason.TOOL_CALLS,
    "length": StopReason.MAX_TOKENS,
    "content_filter": StopReason.REFUSAL,
}


def to_message(message: Message) -> dict[str, Any]:
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        out["content"] = message.content or None
        out["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
            }
            for c in message.tool_calls
        ]
    return out


def _arguments(name: str, raw: str | None) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except ValueError as e:
        # The model wrote broken JSON: another route may well do better, so fall back.
        raise ModelRetryableError(
            f"{NAME}: tool call {name!r} has arguments that are not JSON"
        ) from e
    if not isinstance(value, dict):
        raise ModelRetryableError(
            f"{NAME}: tool call {name!r} has arguments that are not an object"
        )
    return value


def from_response(raw: Any, provider: str | None) -> ModelResponse:
    choice = raw.choices[0]
    calls = [
        ToolCall(
            id=c.id,
            name=c.function.name,
            arguments=_arguments(c.function.name, c.function.arguments),
        )
        for c in choice.message.tool_calls or []
        if c.type == "function"
    ]
    usage = raw.usage
    details = getattr(usage, "prompt_tokens_details", None) if usage else None
    return ModelResponse(
        text=choice.message.content or "",
        tool_calls=calls,
        stop_reason=_STOP.get(choice.finish_reason or "", StopReason.OTHER),
        usage=Usage(
            input_tokens=usage.prompt_tokens if usage else 0,
            output_tokens=usage.completion_tokens if usage else 0,
            cache_read_tokens=(details.cached_tokens or 0) if details else 0,
        ),
        model=raw.model,
        provider=provider,
    )


def _params(request: ModelRequest, model: str) -> dict[str, Any]:
    params: dict[str, Any] = {
        "model": model,
        "max_tokens": request.max_tokens,
        "messages": [to_message(m) for m in request.messages],
    }
    if request.tools:
        params["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters,
                },
            }
            for t in request.tools
        ]
    if request.temperature is not None:
        params["temperature"] = request.temperature
    return params


class OpenAIBackend:
    """OpenAI or any OpenAI-compatible server; the key comes from `api_key_env`."""

    restricted_ok = False

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        provider: str | None = NAME,
        timeout: float = 60.0,
        max_retries: int = 0,
    ) -> None:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            if base_url is None:
                raise ConfigurationError(
                    f"the openai model backend needs an API key in ${api_key_env}; set it, set "
                    "base_url to an OpenAI-compatible server, or route elsewhere in model_routes"
                )
            api_key = "unused"  # the SDK insists on a key; keyless local servers ignore it
        import openai

        self._sdk = openai
        self.provider = provider
        self._client = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries
        )

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> OpenAIBackend:
        """Options from `model_backends[name]`, as the constructor takes them."""
        return cls(**options)

    async def complete(self, request: ModelRequest, model: str) -> ModelResponse:
        sdk = self._sdk
        try:
            raw = await self._client.chat.completions.create(**_params(request, model))
        except sdk.APIStatusError as e:
            raise status_error(NAME, e.status_code, e.message, e.response.headers) from e
        except (sdk.APIConnectionError, sdk.APITimeoutError) as e:
            raise network_error(NAME, e) from e
        if not raw.choices:
            raise ModelRetryableError(f"{NAME}: the server answered with no choices")
        return from_response(raw, self.provider)

    async def stream(
        self, request: ModelRequest, model: str, on_token: Callable[[str], Awaitable[None]]
    ) -> ModelResponse:
        """Server-sent chunks: text deltas go to `on_token` as they come; tool calls arrive
        in pieces by index and are assembled; usage comes in the last chunk."""
        sdk = self._sdk
        params = {**_params(request, model), "stream": True}
        params["stream_options"] = {"include_usage": True}
        text: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        finish, usage, answered_by = "", None, model
        try:
            chunks = await self._client.chat.completions.create(**params)
            async for chunk in chunks:
                answered_by, usage = chunk.model or answered_by, chunk.usage or usage
                for choice in chunk.choices[:1]:
                    if choice.delta.content:
                        text.append(choice.delta.content)
                        await on_token(choice.delta.content)
                    for piece in choice.delta.tool_calls or []:
                        call = calls.setdefault(piece.index, {"id": "", "name": "", "args": ""})
                        call["id"] = piece.id or call["id"]
                        if piece.function is not None:
                            call["name"] += piece.function.name or ""
                            call["args"] += piece.function.arguments or ""
                    finish = choice.finish_reason or finish
        except sdk.APIStatusError as e:
            raise status_error(NAME, e.status_code, e.message, e.response.headers) from e
        except (sdk.APIConnectionError, sdk.APITimeoutError) as e:
            raise network_error(NAME, e) from e
        if not finish:
            raise ModelRetryableError(f"{NAME}: the stream ended before a finish reason")
        return ModelResponse(
            text="".join(text),
            tool_calls=[
                ToolCall(id=c["id"], name=c["name"], arguments=_arguments(c["name"], c["args"]))
                for _, c in sorted(calls.items())
            ],
            stop_reason=_STOP.get(finish, StopReason.OTHER),
            usage=Usage(
                input_tokens=usage.prompt_tokens if usage else 0,
                output_tokens=usage.completion_tokens if usage else 0,
            ),
            model=answered_by,
            provider=self.provider,
        )

    async def aclose(self) -> None:
        await self._client.close()
