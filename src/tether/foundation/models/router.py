"""I12 ModelRouter: one call path from a `ModelRequest` to whichever backend should answer it.

Per call: the routing table gives the task class's routes in order; a restricted request keeps
only routes whose backend may receive restricted data. Each route is tried in turn:

- `ModelRetryableError` with status 429: the same route again after the provider's
  `retry-after` (or a short backoff), up to `rate_limit_attempts` tries; a wait longer than
  `max_retry_wait` is not waited out, the router moves on instead.
- any other `ModelRetryableError` (500, 529 overloaded, a dropped connection): the next route.
- `ModelFatalError` (bad request, bad key): the call stops; another route would be refused too
  or would silently change what was asked.

The guard hook `before_attempt` runs before every backend attempt with one `RouteAttempt`.
If it raises `RateLimited` (a rate limit or an open circuit on that route) the route is skipped
as a fallback would be, and when every route was skipped so, `RateLimited` is raised. Any other
exception from the hook (policy denied, budget exceeded, a loop) propagates at once: no other
route could make the call allowed.

Every attempt is recorded in the returned `RouteDecision`, which the runtime journals with the
response so a replay takes the same route and an operator can see why.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

from tether.errors import (
    ConfigurationError,
    ModelError,
    ModelFatalError,
    ModelRetryableError,
    RateLimited,
)
from tether.foundation.loader import open_backend
from tether.foundation.models.config import RoutingTable, load_config
from tether.foundation.models.contract import (
    AttemptOutcome,
    AttemptRecord,
    ModelBackend,
    ModelRequest,
    ModelResponse,
    Route,
    RouteAttempt,
    RouteDecision,
    RoutedResponse,
    Sensitivity,
    StreamingBackend,
    TokenSink,
)

if TYPE_CHECKING:
    from tether.settings import Settings

BeforeAttempt = Callable[[RouteAttempt], Awaitable[None]]
Sleep = Callable[[float], Awaitable[None]]


def _record(
    route: Route,
    attempt: int,
    outcome: AttemptOutcome,
    error: BaseException | None = None,
    retry_after: float | None = None,
) -> AttemptRecord:
    return AttemptRecord(
        backend=route.backend,
        model=route.model,
        family=route.family,
        attempt=attempt,
        outcome=outcome,
        error_type=type(error).__name__ if error else None,
        error=str(error) if error else None,
        retry_after=retry_after,
    )


def _describe(attempts: list[AttemptRecord]) -> str:
    return "; ".join(
        f"{a.backend}/{a.model} try {a.attempt} {a.outcome}: {a.error_type}: {a.error}"
        for a in attempts
    )


class ModelRouter:
    """Routes model calls by task class and sensitivity, with retries and ordered fallbacks."""

    def __init__(
        self,
        table: RoutingTable,
        backends: Mapping[str, ModelBackend],
        *,
        restricted_ok: Mapping[str, bool] | None = None,
        rate_limit_attempts: int = 3,
        max_retry_wait: float = 60.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        missing = table.backends() - backends.keys()
        if missing:
            raise ConfigurationError(
                f"model_routes name backends with no instance: {', '.join(sorted(missing))}"
            )
        table.check_cross_family()
        self.table = table
        self._backends = dict(backends)
        overrides = restricted_ok or {}
        self._restricted_ok = {
            name: overrides.get(name, backend.restricted_ok)
            for name, backend in self._backends.items()
        }
        self._rate_limit_attempts = max(1, rate_limit_attempts)
        self._max_retry_wait = max_retry_wait
        self._sleep = sleep

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelRouter:
        """Build every backend a route names; raises CrossFamilyJudgeError on an INV-3 breach."""
        config = load_config(settings)
        used = config.table.backends()
        backends = {
            n: open_backend("models", c.type or n, ModelBackend, settings, **c.options)
            for n, c in config.backends.items()
            if n in used
        }
        overrides = {
            n: c.restricted_ok
            for n, c in config.backends.items()
            if n in used and c.restricted_ok is not None
        }
        return cls(config.table, backends, restricted_ok=overrides)

    def restricted_ok(self, backend: str) -> bool:
        return self._restricted_ok.get(backend, False)

    def families(self, task_class: str) -> frozenset[str]:
        """Families a call of this task class may reach; I5 checks INV-3 with this at eval time."""
        return self.table.families(task_class)

    def plan(self, task_class: str, sensitivity: Sensitivity) -> list[Route]:
        """The routes a call may take, in order, before it is made (the guard chain rate-limits
        per backend with this); restricted data only goes to approved backends."""
        routes = self.table.candidates(task_class, sensitivity)
        if sensitivity is Sensitivity.RESTRICTED:
            return [r for r in routes if self.restricted_ok(r.backend)]
        return list(routes)

    def _wait(self, error: ModelRetryableError, attempt: int) -> float | None:
        """Seconds to wait before retrying a rate-limited route, or None to move on."""
        if error.retry_after is not None:
            wait = max(0.0, error.retry_after)
        else:
            wait = 0.5 * 2 ** (attempt - 1)
        return wait if wait <= self._max_retry_wait else None

    async def complete(
        self,
        request: ModelRequest,
        *,
        before_attempt: BeforeAttempt | None = None,
        tokens: TokenSink | None = None,
    ) -> RoutedResponse:
        """Answer the request on the first route that can; ModelError if none could. With
        `tokens`, the answer's text goes there as it arrives, attempt by attempt."""
        routes = self.plan(request.task_class, request.sensitivity)
        if not routes:
            raise ModelError(
                f"no route for task class {request.task_class!r} may receive "
                f"{request.sensitivity.value} data; add a `{request.task_class}:"
                f"{request.sensitivity.value}` route to a backend with restricted_ok = true"
            )
        attempts: list[AttemptRecord] = []
        last_error: BaseException | None = None
        skipped = 0
        for position, route in enumerate(routes):
            backend = self._backends[route.backend]
            attempt = 0
            while True:
                attempt += 1
                if before_attempt is not None:
                    try:
                        await before_attempt(
                            RouteAttempt(
                                request=request, route=route, attempt=attempt, position=position
                            )
                        )
                    except RateLimited as e:
                        attempts.append(_record(route, attempt, "skipped", e))
                        last_error, skipped = e, skipped + 1
                        break
                try:
                    response = await _answer(backend, request, route.model, tokens)
                except ModelRetryableError as e:
                    wait = self._wait(e, attempt)
                    if e.status == 429 and attempt < self._rate_limit_attempts and wait is not None:
                        attempts.append(_record(route, attempt, "retried", e, retry_after=wait))
                        await self._sleep(wait)
                        continue
                    attempts.append(_record(route, attempt, "failed", e))
                    last_error = e
                    break
                except ModelFatalError as e:
                    attempts.append(_record(route, attempt, "fatal", e))
                    raise ModelError(
                        f"model call for task class {request.task_class!r} refused by {route}: "
                        f"{e} (attempts: {_describe(attempts)})"
                    ) from e
                attempts.append(_record(route, attempt, "ok"))
                decision = RouteDecision(
                    backend=route.backend, model=route.model, family=route.family, attempts=attempts
                )
                return RoutedResponse(response=response, decision=decision)
        if skipped == len(routes):
            raise RateLimited(
                f"every route for task class {request.task_class!r} is rate limited or has an "
                f"open circuit ({_describe(attempts)})"
            ) from last_error
        raise ModelError(
            f"model call for task class {request.task_class!r} failed on every route: "
            f"{_describe(attempts)}"
        ) from last_error

    async def aclose(self) -> None:
        """Close backends that hold connections (the vendor SDK clients)."""
        for backend in self._backends.values():
            close = getattr(backend, "aclose", None)
            if close is not None:
                await close()


async def _answer(
    backend: ModelBackend, request: ModelRequest, model: str, tokens: TokenSink | None
) -> ModelResponse:
    """One backend attempt; streamed into `tokens` if given (whole, if the backend can't)."""
    if tokens is None:
        return await backend.complete(request, model)
    tokens.attempt()
    if isinstance(backend, StreamingBackend):
        return await backend.stream(request, model, tokens.token)
    response = await backend.complete(request, model)
    if response.text:
        await tokens.token(response.text)
    return response
