"""The local `agent` model: a rule-driven responder that uses the tools it is offered.

One turn at a time, as a chat model would: it reads the last user message (and the system
prompt), ranks the offered tools by how many words of their name and description the request
shares (a tool named outright in the prompt ranks first), puts first the tools whose required
ids and numbers are already known, and calls the best one not yet called since that message,
with arguments filled from the tool's JSON schema. When no relevant tool is
left it answers in text, summarising the tool results it received. It never invents a tool or
an argument name, and the same conversation always gets the same reply.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from tether.foundation.models.contract import Message, ModelRequest, ToolCall, ToolSpec
from tether.foundation.models.local.arguments import fill_arguments, ungrounded
from tether.foundation.models.local.summarizer import summarize
from tether.foundation.models.local.text import stems

_NAMED_BONUS = 5


def _tool_words(tool: ToolSpec) -> set[str]:
    return stems(f"{tool.name.replace('_', ' ')} {tool.description}")


def _score(tool: ToolSpec, user_text: str, system_text: str) -> int:
    words = _tool_words(tool)
    named = any(tool.name in text for text in (user_text, system_text))
    overlap = 2 * len(words & stems(user_text)) + len(words & stems(system_text))
    return overlap + (_NAMED_BONUS if named else 0)


def _call_id(conversation: list[Message], tool: str) -> str:
    seed = json.dumps([m.model_dump(mode="json") for m in conversation], sort_keys=True) + tool
    return "call_" + hashlib.sha256(seed.encode()).hexdigest()[:16]


def _known_values(results: list[Message]) -> dict[str, Any]:
    """Fields of earlier JSON tool results, newest first, one level of nesting flattened."""
    known: dict[str, Any] = {}
    for message in reversed(results):
        try:
            data = json.loads(message.content)
        except ValueError:
            continue
        if not isinstance(data, dict):
            continue
        for key, value in data.items():
            known.setdefault(key, value)
            if isinstance(value, dict):
                for inner, inner_value in value.items():
                    known.setdefault(inner, inner_value)
    return known


def _describe_result(message: Message) -> str:
    try:
        data = json.loads(message.content)
    except ValueError:
        data = None
    if isinstance(data, dict):
        scalars = [f"{k}={v}" for k, v in data.items() if isinstance(v, str | int | float | bool)]
        return ", ".join(scalars[:6]) or json.dumps(data)[:300]
    text = message.content.strip()
    return summarize(text, max_sentences=2) if len(text) > 300 else text


def respond(request: ModelRequest) -> tuple[str, list[ToolCall]]:
    """The next assistant turn: one tool call, or the final text answer."""
    messages = request.messages
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=-1)
    user_text = messages[last_user].content if last_user >= 0 else ""
    system_text = " ".join(m.content for m in messages if m.role == "system")
    since = messages[last_user + 1 :]
    called = {c.name for m in since if m.role == "assistant" for c in m.tool_calls}
    results = [m for m in since if m.role == "tool"]

    known = _known_values(results)
    # Relevant tools first; among them, those whose ids and numbers are already known, so a
    # lookup tool runs before the tool that needs what it finds.
    ranked = sorted(
        (
            (score > 0, not ungrounded(t.parameters, user_text, known), score, -i, t)
            for i, t in enumerate(request.tools)
            if t.name not in called and (score := _score(t, user_text, system_text)) > 0
        ),
        key=lambda scored: scored[:4],
        reverse=True,
    )
    if ranked:
        tool = ranked[0][-1]
        context = " ".join([user_text, *(m.content for m in results)])
        arguments = fill_arguments(tool.parameters, user_text, known)
        if not arguments and context != user_text:
            arguments = fill_arguments(tool.parameters, context, known)
        return "", [ToolCall(id=_call_id(messages, tool.name), name=tool.name, arguments=arguments)]
    return _final_answer(user_text, results), []


def _final_answer(user_text: str, results: list[Message]) -> str:
    if results:
        lines = [f"- {m.name or 'tool'}: {_describe_result(m)}" for m in results]
        return "Here is what the tools returned:\n" + "\n".join(lines)
    if not user_text.strip():
        return "There is no request to answer."
    return "No offered tool fits this request. In short: " + summarize(user_text, max_sentences=2)
