"""How the HTTP API answers a failure: tether's errors mapped to statuses, one JSON body shape.

    RunNotFound, WorkflowNotFound, unknown schedule    404  (and an unknown approval request)
    RunStateError                                       409  (the reason: "run X is completed; ...")
    AlreadyDecided                                      409  (naming who decided, and when)
    NotAnApprover                                       403
    InvalidInput, a malformed request                   422  (names each field that is wrong)
    IdentityError, no credentials                       401
    a role that may not do the action, a bad CSRF token 403
    a body over MAX_BODY_BYTES                          413
    any other TetherError                               400
    anything else                                       500, one line, never a traceback

Every operation documents these answers in the OpenAPI schema (`RESPONSES`), because FastAPI
leaves all but 422 out by default and a client generated from the schema would not expect them.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from tether.errors import (
    IdentityError,
    InvalidInput,
    RunNotFound,
    RunStateError,
    TetherError,
    WorkflowNotFound,
)
from tether.foundation.hitl.contract import AlreadyDecided, NotAnApprover, UnknownApproval

log = logging.getLogger("tether.server")

MAX_BODY_BYTES = 1024 * 1024  # a request body over 1 MiB is refused with 413 before it is read


class ErrorBody(BaseModel):
    """What every 4xx and 5xx answer carries: a stable code, a sentence, and for 422 the fields."""

    error: str
    message: str
    fields: list[dict[str, Any]] = []


def _describe(status: int, text: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": text}


RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _describe(400, "The request cannot be carried out as asked"),
    401: _describe(401, "No credentials, or a bad, expired or forged token"),
    403: _describe(403, "The caller's role may not do this, or the CSRF token is missing"),
    404: _describe(404, "No run, workflow or schedule by that name"),
    409: _describe(409, "The run is not in a state that allows this; the message says why"),
    413: _describe(413, f"The body is over {MAX_BODY_BYTES} bytes"),
    422: _describe(422, "The body or a parameter is malformed; `fields` names each one"),
}


class ApiError(Exception):
    """An answer other than success, raised by the server's own checks (auth, CSRF, limits)."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


def status_of(e: TetherError) -> tuple[int, str]:
    if isinstance(e, RunNotFound | WorkflowNotFound | UnknownApproval):
        return 404, "not_found"
    if isinstance(e, AlreadyDecided):
        return 409, "already_decided"
    if isinstance(e, NotAnApprover):
        return 403, "not_an_approver"
    if isinstance(e, RunStateError):
        return 409, "wrong_state"
    if isinstance(e, InvalidInput):
        return 422, "invalid_input"
    if isinstance(e, IdentityError):
        return 401, "unauthenticated"
    return 400, "bad_request"


def _fields(e: InvalidInput) -> list[dict[str, Any]]:
    errors = getattr(e, "errors", None)
    if not isinstance(errors, list):
        return []
    return [{"loc": list(err.get("loc", ())), "msg": str(err.get("msg", ""))} for err in errors]


def error_response(status: int, body: ErrorBody, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into an `ErrorBody` answer."""

    async def tether_error(request: Request, e: Exception) -> Response:
        assert isinstance(e, TetherError)
        status, code = status_of(e)
        fields = _fields(e) if isinstance(e, InvalidInput) else []
        return await _answer(request, status, ErrorBody(error=code, message=str(e), fields=fields))

    async def api_error(request: Request, e: Exception) -> Response:
        assert isinstance(e, ApiError)
        return await _answer(request, e.status, ErrorBody(error=e.error, message=e.message))

    async def invalid_request(request: Request, e: Exception) -> Response:
        assert isinstance(e, RequestValidationError)
        fields = [
            {"loc": [str(part) for part in err.get("loc", ())], "msg": str(err.get("msg", ""))}
            for err in e.errors()
        ]
        named = ", ".join(".".join(f["loc"]) for f in fields) or "the request"
        body = ErrorBody(error="malformed_request", message=f"malformed: {named}", fields=fields)
        return await _answer(request, 422, body)

    async def http_error(request: Request, e: Exception) -> Response:
        assert isinstance(e, HTTPException)
        body = ErrorBody(error="http_error", message=str(e.detail))
        return await _answer(request, e.status_code, body)

    async def unexpected(request: Request, e: Exception) -> Response:
        log.error("unexpected error serving %s %s", request.method, request.url.path, exc_info=e)
        body = ErrorBody(
            error="internal", message=f"internal error ({type(e).__name__}); see the server log"
        )
        return await _answer(request, 500, body)

    app.add_exception_handler(TetherError, tether_error)
    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


async def _answer(request: Request, status: int, body: ErrorBody) -> Response:
    """JSON for API clients; an HTML page for a browser that asked for a page."""
    if "text/html" in request.headers.get("accept", "") and not request.url.path.startswith(
        "/api/"
    ):
        from tether.server.rendering import error_page  # templates import auth, which imports us

        return error_page(request, status, body.error, body.message)
    return error_response(status, body)
