"""The blob store on S3, or R2 or any S3-compatible store reached by endpoint URL: one object
per blob under `blobs_s3_url` (s3://bucket/prefix), `{prefix}/ab/cdef...` as the file store
lays them out.

Blobs must be reachable from every host that resolves a reference: a run's step on one
Temporal worker writes a large result that the workflow on another reads, and several
workers over one PostgreSQL share values the same way. Content addressing makes a put safe
to repeat and to race: the same bytes land under the same key.

boto3 is imported here only (INV-1); its failures become tether's errors at this boundary.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tether.errors import ConfigurationError, DatabaseUnavailable

if TYPE_CHECKING:
    from tether.settings import Settings

_MISSING = {"404", "NoSuchKey", "NotFound"}


def _split(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` as (bucket, "some/prefix")."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ConfigurationError(f"TETHER_BLOBS_S3_URL {url!r} is not an s3://bucket/prefix URL")
    return parts.netloc, parts.path.strip("/")


def _digest(address: str) -> str:
    algo, _, digest = address.partition(":")
    if algo != "sha256" or len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
        raise KeyError(f"not a blob address: {address!r}")
    return digest


class S3BlobStore:
    def __init__(self, client: Any, url: str) -> None:
        self._client = client
        self.bucket, self.prefix = _split(url)
        self.url = url

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> S3BlobStore:
        """From `blobs_s3_url` and, for R2 or another S3-compatible store,
        `blobs_s3_endpoint_url`; credentials and region are the usual AWS ones."""
        if options:
            raise TypeError(f"unexpected options {sorted(options)}")
        if not settings.blobs_s3_url:
            raise ConfigurationError(
                "blob store 's3' needs TETHER_BLOBS_S3_URL (s3://bucket/prefix), and "
                "TETHER_BLOBS_S3_ENDPOINT_URL for R2 or another S3-compatible store"
            )
        import boto3

        client = boto3.client("s3", endpoint_url=settings.blobs_s3_endpoint_url)
        return cls(client, settings.blobs_s3_url)

    def _key(self, digest: str) -> str:
        return "/".join(p for p in (self.prefix, digest[:2], digest[2:]) if p)

    def _call(self, op: str, **kwargs: Any) -> Any:
        """One S3 request; KeyError when the object is absent, DatabaseUnavailable when the
        store cannot be used (unreachable, no bucket, refused credentials)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self._client, op)(Bucket=self.bucket, **kwargs)
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", ""))
            if code in _MISSING and "Key" in kwargs:
                raise KeyError(f"blob {kwargs['Key']} is missing from {self.url}") from None
            raise DatabaseUnavailable(f"the s3 blob store {self.url}: {e}") from None
        except BotoCoreError as e:
            raise DatabaseUnavailable(f"the s3 blob store {self.url}: {e}") from None

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        key = self._key(digest)
        try:
            self._call("head_object", Key=key)
        except KeyError:
            self._call("put_object", Key=key, Body=data)
        return f"sha256:{digest}"

    def get(self, address: str) -> bytes:
        body = self._call("get_object", Key=self._key(_digest(address)))["Body"]
        data: bytes = body.read()
        return data

    def delete(self, address: str) -> int:
        key = self._key(_digest(address))
        try:
            size = int(self._call("head_object", Key=key)["ContentLength"])
        except KeyError:
            return 0
        self._call("delete_object", Key=key)
        return size

    def addresses(self) -> list[tuple[str, float, int]]:
        out = []
        start = f"{self.prefix}/" if self.prefix else ""
        token: dict[str, str] = {}
        while True:
            page = self._call("list_objects_v2", Prefix=start, **token)
            for obj in page.get("Contents", ()):
                digest = obj["Key"][len(start) :].replace("/", "")
                if len(digest) == 64:
                    out.append((f"sha256:{digest}", obj["LastModified"].timestamp(), obj["Size"]))
            if not page.get("IsTruncated"):
                return out
            token = {"ContinuationToken": page["NextContinuationToken"]}
