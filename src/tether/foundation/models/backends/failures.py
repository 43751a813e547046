"""Provider HTTP failures as tether's two model errors, shared by the vendor SDK backends.

The Anthropic and OpenAI SDKs raise the same shapes (a status error carrying the HTTP response,
a connection error, a timeout), so one mapping serves both, as httpx maps httpcore's errors in
one place. Retryable: 408, 409, 429, every 5xx (529 is Anthropic's "overloaded") and any network
failure; the router retries a 429 on the same route and falls back on the rest. Everything else
(400 bad request, 401/403 bad key, 404 unknown model, 422) is fatal: another try would be
refused the same way.
"""

from __future__ import annotations

from collections.abc import Mapping

from tether.errors import ModelError, ModelFatalError, ModelRetryableError

_RETRYABLE = frozenset({408, 409, 429})


def retry_after(headers: Mapping[str, str]) -> float | None:
    """The provider's wait hint in seconds: `retry-after-ms`, else `retry-after` in seconds.

    An HTTP-date `retry-after` is not honoured; the router's own backoff applies instead.
    """
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) / scale)
        except ValueError:
            continue
    return None


def status_error(backend: str, status: int, message: str, headers: Mapping[str, str]) -> ModelError:
    """The tether error for an HTTP error status from a provider."""
    text = f"{backend} answered HTTP {status}: {message}"
    if status in _RETRYABLE or status >= 500:
        return ModelRetryableError(text, status=status, retry_after=retry_after(headers))
    return ModelFatalError(text, status=status)


def network_error(backend: str, error: BaseException) -> ModelRetryableError:
    """A request that got no HTTP answer (refused, reset, timed out)."""
    return ModelRetryableError(f"{backend} could not be reached: {type(error).__name__}: {error}")
