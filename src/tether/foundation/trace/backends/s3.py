"""I4's portable dump on S3, or R2 or any S3-compatible store reached by endpoint URL: the
JSON lines `jsonl` writes, one object per run per flush, and one manifest per flush naming
the objects it wrote.

    {prefix}/runs/{run id}/{first start ns}-{digest}.jsonl     the run's spans, one a line
    {prefix}/manifests/{first start ns}-{digest}.json          {"objects": [{key, run_id,
                                                                  trace_id, spans, bytes}]}

Nothing is ever rewritten, so workers flushing at once never race on a key, and a key is named
by its content, so a flush retried after a partial failure puts the same objects again rather
than copies. `tether trace load s3://bucket/prefix` reads the manifests and the objects they
name. Writes go out on a SpanOutbox thread, as OTLP's do: a run never waits on the store, and
an unreachable one costs buffered spans, then one warning with the count.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

from tether.errors import ConfigurationError
from tether.foundation.trace.contract import Span, span_json
from tether.foundation.trace.outbox import SpanOutbox


def split_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` as (bucket, "some/prefix")."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ConfigurationError(f"{url!r} is not an s3://bucket/prefix URL")
    return parts.netloc, parts.path.strip("/")


def s3_client(endpoint_url: str | None) -> Any:
    """A boto3 S3 client; credentials and region come from the usual AWS variables/files."""
    try:
        import boto3
    except ImportError as e:
        raise ConfigurationError(
            "the s3 trace backend needs boto3: pip install 'tether[s3]'"
        ) from e
    return boto3.client("s3", endpoint_url=endpoint_url)


class S3TraceSink:
    def __init__(self, client: Any, url: str, **bounds: Any) -> None:
        self._client = client
        self.bucket, self.prefix = split_url(url)
        self.outbox = SpanOutbox(self._send, target=url, **bounds)

    @classmethod
    def from_settings(cls, settings: Any) -> S3TraceSink:
        if not settings.trace_s3_url:
            raise ConfigurationError(
                "trace backend 's3' needs TETHER_TRACE_S3_URL (s3://bucket/prefix), and "
                "TETHER_TRACE_S3_ENDPOINT_URL for R2 or another S3-compatible store"
            )
        return cls(s3_client(settings.trace_s3_endpoint_url), settings.trace_s3_url)

    def emit(self, span: Span) -> None:
        self.outbox.put(span)

    def flush(self) -> None:
        self.outbox.flush()

    def drain(self, timeout: float) -> bool:
        return self.outbox.drain(timeout)

    def close(self) -> None:
        self.outbox.close()

    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def _send(self, spans: Sequence[Span]) -> str | None:
        from botocore.exceptions import BotoCoreError, ClientError

        by_run: dict[str, list[Span]] = defaultdict(list)
        for span in spans:
            by_run[str(span.attributes.get("tether.run.id") or span.trace_id)].append(span)
        objects = []
        try:
            for run_id, run_spans in by_run.items():
                body = b"".join(span_json(s) + b"\n" for s in run_spans)
                key = self._key("runs", run_id, _name(run_spans[0], body) + ".jsonl")
                self._client.put_object(Bucket=self.bucket, Key=key, Body=body)
                objects.append(
                    {
                        "key": key,
                        "run_id": run_id,
                        "trace_id": run_spans[0].trace_id,
                        "spans": len(run_spans),
                        "bytes": len(body),
                    }
                )
            manifest = json.dumps({"objects": objects}).encode()
            key = self._key("manifests", _name(spans[0], manifest) + ".json")
            self._client.put_object(Bucket=self.bucket, Key=key, Body=manifest)
        except (BotoCoreError, ClientError) as e:
            return str(e)
        return None


def _name(first: Span, body: bytes) -> str:
    return f"{first.start_ns:020d}-{hashlib.blake2b(body, digest_size=8).hexdigest()}"


def read_dump(url: str, endpoint_url: str | None) -> Iterator[tuple[str, Iterable[bytes]]]:
    """Each object a manifest under `url` names, as (its s3:// name, its lines)."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = split_url(url)
    client = s3_client(endpoint_url)
    try:
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix="/".join(p for p in (prefix, "manifests/") if p)
        )
        manifests = sorted(o["Key"] for page in pages for o in page.get("Contents", ()))
        for manifest in manifests:
            try:
                listed = json.loads(client.get_object(Bucket=bucket, Key=manifest)["Body"].read())
                keys = [str(entry["key"]) for entry in listed["objects"]]
            except (ValueError, KeyError, TypeError) as e:
                raise ConfigurationError(f"s3://{bucket}/{manifest} is not a manifest: {e}") from e
            for key in keys:
                body = client.get_object(Bucket=bucket, Key=key)["Body"]
                yield f"s3://{bucket}/{key}", body.iter_lines()
    except (BotoCoreError, ClientError) as e:
        raise ConfigurationError(f"cannot read the trace dump at {url}: {e}") from e
