"""One deterministic token count for every backend that reports no vendor usage.

It is not any vendor's tokenizer: it counts words and punctuation marks, plus a fixed overhead
per message and per tool, so the same conversation costs the same on every offline backend and
budgets behave the same in a demo as they would against a provider.
"""

from __future__ import annotations

import json
import re

from tether.foundation.models.contract import Message, ModelRequest, ToolCall, Usage

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)
_PER_MESSAGE = 3  # role and framing, as chat formats spend a few tokens per turn
_PER_TOOL = 5


def count_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


def _calls_text(calls: list[ToolCall]) -> str:
    return " ".join(f"{c.name} {json.dumps(c.arguments, sort_keys=True)}" for c in calls)


def count_message(message: Message) -> int:
    return (
        _PER_MESSAGE + count_tokens(message.content) + count_tokens(_calls_text(message.tool_calls))
    )


def count_request(request: ModelRequest) -> int:
    tools = sum(
        _PER_TOOL
        + count_tokens(f"{t.name} {t.description} {json.dumps(t.parameters, sort_keys=True)}")
        for t in request.tools
    )
    return sum(count_message(m) for m in request.messages) + tools


def usage_for(request: ModelRequest, text: str, tool_calls: list[ToolCall]) -> Usage:
    """Usage of one offline call: the whole request in, the reply and its tool calls out."""
    return Usage(
        input_tokens=count_request(request),
        output_tokens=count_tokens(text) + count_tokens(_calls_text(tool_calls)),
    )
