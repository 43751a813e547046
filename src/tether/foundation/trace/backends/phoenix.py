"""I4 to Arize Phoenix: OTLP/HTTP to `{phoenix_endpoint}/v1/traces`, with the OpenInference
attributes Phoenix renders by (`openinference.span.kind` AGENT for a run, LLM for a model call,
TOOL for a tool call, CHAIN for the rest; `input.value`, `output.value`, `llm.*`) beside the
OTel GenAI ones tether's spans already carry. Spans land in project `phoenix_project`."""

from __future__ import annotations

from typing import Any

from tether.foundation.trace.backends.otlp import (
    Attributes,
    OtlpTraceSink,
    batching,
    http_exporter,
)
from tether.foundation.trace.contract import Span

_KIND = {"run": "AGENT", "model": "LLM", "tool": "TOOL"}


class PhoenixTraceSink(OtlpTraceSink):
    @classmethod
    def from_settings(cls, settings: Any) -> PhoenixTraceSink:
        endpoint = f"{settings.phoenix_endpoint.rstrip('/')}/v1/traces"
        return cls(
            http_exporter(endpoint, dict(settings.otlp_headers) or None),
            target=endpoint,
            resource={"openinference.project.name": settings.phoenix_project},
            **batching(),
        )

    def extra_attributes(self, span: Span) -> Attributes:
        return openinference_attributes(span)


def openinference_attributes(span: Span) -> Attributes:
    a = span.attributes
    kind = _KIND.get(span.name.partition(" ")[0], "CHAIN")
    out: Attributes = {"openinference.span.kind": kind}
    for tether_key, key in (("tether.step.input", "input"), ("tether.step.output", "output")):
        if a.get(tether_key) is not None:
            out[f"{key}.value"] = a[tether_key]
            out[f"{key}.mime_type"] = "application/json"
    if kind == "AGENT":
        out["gen_ai.agent.name"] = span.name.partition(" ")[2]
    elif kind == "LLM":
        inputs, outputs = a.get("gen_ai.usage.input_tokens"), a.get("gen_ai.usage.output_tokens")
        out.update(
            {
                "llm.model_name": a.get("gen_ai.response.model") or a.get("gen_ai.request.model"),
                "llm.provider": a.get("gen_ai.provider.name"),
                "llm.system": a.get("gen_ai.system"),
                "llm.token_count.prompt": inputs,
                "llm.token_count.completion": outputs,
                "llm.token_count.prompt_details.cache_read": a.get(
                    "gen_ai.usage.cache_read.input_tokens"
                ),
                "llm.token_count.total": (inputs or 0) + (outputs or 0),
                "llm.cost.total": a.get("tether.cost.usd"),
            }
        )
    elif kind == "TOOL":
        out["tool.name"] = a.get("gen_ai.tool.name")
    return out
