"""A local stand-in for OpenAI's Chat Completions (POST /v1/chat/completions), wire-exact.

Replies carry one choice with content or function tool calls (arguments as a JSON string, as
OpenAI sends them), a finish reason and usage; errors carry OpenAI's error envelope, so the
official SDK runs its real parsing and raising code. Point `base_url` at `base_url`. A request
with `"stream": true` gets the same reply as server-sent chunks, paced by `chunk_delay`.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

from tests.fakes.provider_server import Body, Failure, ProviderServer, words

_ids = itertools.count(1)


def text(value: str) -> Body:
    return {"message": {"role": "assistant", "content": value}, "finish_reason": "stop"}


def tool_call(name: str, arguments: dict[str, Any] | str) -> Body:
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    call = {
        "id": f"call_{next(_ids):04d}",
        "type": "function",
        "function": {"name": name, "arguments": raw},
    }
    return {
        "message": {"role": "assistant", "content": None, "tool_calls": [call]},
        "finish_reason": "tool_calls",
    }


def failure(status: int, retry_after: float | None = None) -> Failure:
    headers = {"retry-after": str(retry_after)} if retry_after is not None else {}
    code = {429: "rate_limit_exceeded", 401: "invalid_api_key"}.get(status)
    body = {
        "error": {
            "message": f"test server error {status}",
            "type": "server_error",
            "param": None,
            "code": code,
        }
    }
    return Failure(status, body, headers)


def _answer(request: Body, scripted: Body | None) -> Body:
    if scripted is None:
        scripted = text(f"echo: {request['messages'][-1].get('content')}")
    prompt = words([request["messages"], request.get("tools")])
    completion = words(scripted["message"])
    return {
        "id": f"chatcmpl-{next(_ids):04d}",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": request["model"],
        "choices": [{"index": 0, "logprobs": None, **scripted}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


def _chunks(answer: Body) -> list[Body]:
    """A reply as OpenAI streams it: the role, the content word by word (each with the space
    before it), tool calls whole, the finish reason, then usage in a chunk of no choices."""
    choice = answer["choices"][0]
    message = choice["message"]
    base = {"id": answer["id"], "object": "chat.completion.chunk", "created": answer["created"],
            "model": answer["model"]}  # fmt: skip

    def chunk(delta: Body, finish: str | None = None) -> Body:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    events = [chunk({"role": "assistant", "content": ""})]
    events += [
        chunk({"content": piece}) for piece in re.findall(r"\s*\S+", message["content"] or "")
    ]
    for i, call in enumerate(message.get("tool_calls") or []):
        events.append(chunk({"tool_calls": [{"index": i, **call}]}))
    events.append(chunk({}, choice["finish_reason"]))
    events.append({**base, "choices": [], "usage": answer["usage"]})
    return events


class OpenAIServer(ProviderServer):
    def __init__(self) -> None:
        super().__init__("/v1/chat/completions", _answer, _chunks)

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"
