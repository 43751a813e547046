"""The `local` backend: offline models that need no key and download nothing.

The model name picks the behaviour, as it would on a provider (see `local/` for what each is):

    rules-agent    reads the tools' schemas, emits tool calls, then a final answer
    tfidf-logreg   classifies the last user message into one of the shipped ticket labels
    extractive     summarizes the last user message by its top sentences
    rubric-judge   grades an answer against a reference, as JSON

Token usage is counted with `tokens.usage_for`, the one count every offline backend shares.
Data never leaves the process, so restricted data may come here.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from tether.errors import ModelFatalError
from tether.foundation.models.contract import (
    ModelRequest,
    ModelResponse,
    StopReason,
    ToolCall,
)
from tether.foundation.models.local import agent, classifier, judge, summarizer
from tether.foundation.models.tokens import usage_for

if TYPE_CHECKING:
    from tether.settings import Settings


def _classify(request: ModelRequest) -> tuple[str, list[ToolCall]]:
    users = [m.content for m in request.messages if m.role == "user"]
    return classifier.classify(users[-1] if users else "").label, []


def _summarize(request: ModelRequest) -> tuple[str, list[ToolCall]]:
    users = [m.content for m in request.messages if m.role == "user"]
    budget = max(1, request.max_tokens * 3 // 4)  # about three words for four tokens
    return summarizer.summarize(users[-1] if users else "", max_words=budget), []


def _judge(request: ModelRequest) -> tuple[str, list[ToolCall]]:
    return judge.grade(request), []


MODELS: dict[str, Callable[[ModelRequest], tuple[str, list[ToolCall]]]] = {
    "rules-agent": agent.respond,
    "tfidf-logreg": _classify,
    "extractive": _summarize,
    "rubric-judge": _judge,
}


class LocalBackend:
    """Deterministic offline models, dispatched by model name."""

    restricted_ok = True
    provider = "local"

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> LocalBackend:
        return cls(**options)

    async def stream(
        self, request: ModelRequest, model: str, on_token: Callable[[str], Awaitable[None]]
    ) -> ModelResponse:
        """The answer word by word (with the whitespace before each), as a provider streams."""
        response = await self.complete(request, model)
        for piece in re.findall(r"\s*\S+", response.text):
            await on_token(piece)
        return response

    async def complete(self, request: ModelRequest, model: str) -> ModelResponse:
        respond = MODELS.get(model)
        if respond is None:
            raise ModelFatalError(
                f"the local backend has no model {model!r}; it serves {', '.join(sorted(MODELS))}"
            )
        # The classifier trains on first use; keep that (and any long rule pass) off the loop.
        text, calls = await asyncio.to_thread(respond, request)
        return ModelResponse(
            text=text,
            tool_calls=calls,
            stop_reason=StopReason.TOOL_CALLS if calls else StopReason.END,
            usage=usage_for(request, text, calls),
            model=model,
            provider=self.provider,
        )
