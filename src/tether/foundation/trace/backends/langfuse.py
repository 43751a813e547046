"""I4 to Langfuse: OTLP/HTTP to `{langfuse_host}/api/public/otel/v1/traces` (Langfuse's
documented ingestion path; its own SDK is an OTel exporter too), authenticated by HTTP basic
auth with the project's public and secret keys, with the attributes Langfuse reads: the
observation type (agent for a run, generation for a model call, tool, span for the rest),
input and output, and a generation's model, usage and cost."""

from __future__ import annotations

import base64
import json
from typing import Any

from tether.errors import ConfigurationError
from tether.foundation.trace.backends.otlp import (
    Attributes,
    OtlpTraceSink,
    batching,
    http_exporter,
)
from tether.foundation.trace.contract import Span

_TYPE = {"run": "agent", "model": "generation", "tool": "tool"}


class LangfuseTraceSink(OtlpTraceSink):
    @classmethod
    def from_settings(cls, settings: Any) -> LangfuseTraceSink:
        public, secret = settings.langfuse_public_key, settings.langfuse_secret_key
        if not public or secret is None:
            raise ConfigurationError(
                "trace backend 'langfuse' needs the project's keys: set "
                "TETHER_LANGFUSE_PUBLIC_KEY and TETHER_LANGFUSE_SECRET_KEY "
                "(or LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY)"
            )
        pair = f"{public}:{secret.get_secret_value()}".encode()
        endpoint = f"{settings.langfuse_host.rstrip('/')}/api/public/otel/v1/traces"
        headers = {
            **settings.otlp_headers,
            "Authorization": f"Basic {base64.b64encode(pair).decode()}",
        }
        return cls(http_exporter(endpoint, headers), target=endpoint, **batching())

    def extra_attributes(self, span: Span) -> Attributes:
        return langfuse_attributes(span)


def langfuse_attributes(span: Span) -> Attributes:
    a = span.attributes
    prefix, _, name = span.name.partition(" ")
    kind = _TYPE.get(prefix, "span")
    out: Attributes = {
        "langfuse.observation.type": kind,
        "langfuse.observation.input": a.get("tether.step.input"),
        "langfuse.observation.output": a.get("tether.step.output"),
    }
    if span.status != "ok":
        out["langfuse.observation.level"] = "ERROR"
        out["langfuse.observation.status_message"] = a.get("error.message") or a.get("error.type")
    if kind == "agent" and span.parent_span_id is None:
        out["langfuse.trace.name"] = name
    elif kind == "generation":
        inputs = a.get("gen_ai.usage.input_tokens") or 0
        outputs = a.get("gen_ai.usage.output_tokens") or 0
        out["langfuse.observation.model.name"] = a.get("gen_ai.response.model") or a.get(
            "gen_ai.request.model"
        )
        usage = {"input": inputs, "output": outputs, "total": inputs + outputs}
        out["langfuse.observation.usage_details"] = json.dumps(usage)
        if a.get("tether.cost.priced", True) and a.get("tether.cost.usd") is not None:
            out["langfuse.observation.cost_details"] = json.dumps({"total": a["tether.cost.usd"]})
    return out
