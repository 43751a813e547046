"""A local stand-in for Anthropic's Messages API (POST /v1/messages), in its real wire format.

Replies carry content blocks (text, tool_use), a stop reason and usage; errors carry Anthropic's
error envelope (`rate_limit_error` 429 with retry-after, `api_error` 500, `overloaded_error`
529), so the official SDK parses and raises exactly as it would against the real service.
"""

from __future__ import annotations

import itertools
from typing import Any

from tests.fakes.provider_server import Body, Failure, ProviderServer, words

_ids = itertools.count(1)
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def text(value: str) -> Body:
    return {"content": [{"type": "text", "text": value}], "stop_reason": "end_turn"}


def tool_use(name: str, arguments: dict[str, Any], text_before: str = "") -> Body:
    blocks: list[Body] = [{"type": "text", "text": text_before}] if text_before else []
    blocks.append(
        {"type": "tool_use", "id": f"toolu_{next(_ids):04d}", "name": name, "input": arguments}
    )
    return {"content": blocks, "stop_reason": "tool_use"}


def failure(status: int, retry_after: float | None = None) -> Failure:
    headers = {"retry-after": str(retry_after)} if retry_after is not None else {}
    kind = _ERROR_TYPES.get(status, "api_error")
    body = {"type": "error", "error": {"type": kind, "message": f"test server {kind}"}}
    return Failure(status, body, headers)


def _answer(request: Body, scripted: Body | None) -> Body:
    if scripted is None:
        last = request["messages"][-1]["content"]
        said = last if isinstance(last, str) else " ".join(b.get("text", "") for b in last)
        scripted = text(f"echo: {said}")
    return {
        "id": f"msg_{next(_ids):04d}",
        "type": "message",
        "role": "assistant",
        "model": request["model"],
        "stop_sequence": None,
        "usage": {
            "input_tokens": words(
                [request.get("system"), request["messages"], request.get("tools")]
            ),
            "output_tokens": words(scripted["content"]),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
        **scripted,
    }


class AnthropicServer(ProviderServer):
    """Point the SDK's `base_url` at `origin`."""

    def __init__(self) -> None:
        super().__init__("/v1/messages", _answer)
