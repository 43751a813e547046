"""The web pages' Jinja2 environment: templates, the filters they share, and the error page.

Pages are rendered on the server and readable without JavaScript; htmx (vendored in
`static/htmx.min.js`, no Node build) only swaps fragments in when the change stream says so.
"""

from __future__ import annotations

import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from tether.foundation.policy.api import ACTIONS
from tether.server.auth import SESSION_COOKIE

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else ""


def _span(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h" if seconds < 172800 else f"{seconds / 86400:.0f} d"


def _since(ts: float) -> str:
    return _span(max(0.0, time.time() - ts))


def _age(ts: float) -> str:
    return _since(ts) + " ago"


def _usd(value: Decimal | float | None) -> str:
    return "" if value is None else f"${value:.4f}"


templates.env.filters.update(when=_when, span=_span, since=_since, age=_age, usd=_usd)


def render(request: Request, name: str, status: int = 200, **context: Any) -> Response:
    """A page with what every page needs: the caller, and the CSRF token for its forms."""
    state = request.app.state.tether
    session = request.cookies.get(SESSION_COOKIE)
    who = getattr(request.state, "identity", None)
    context.setdefault("who", who)
    # what the page offers follows the API rules: a button the rules would refuse is not shown
    may = {a: who is not None and state.auth.permits(who, a)[0] for a in ACTIONS}
    context["may"] = may
    context["can_operate"] = any(allowed for a, allowed in may.items() if a != "read")
    context["csrf"] = state.auth.csrf_token(session) if session else ""
    return templates.TemplateResponse(request, name, context, status_code=status)


def error_page(request: Request, status: int, error: str, message: str) -> Response:
    return templates.TemplateResponse(
        request,
        "error.html",
        {
            "code": status,
            "error": error,
            "message": message,
            "who": None,
            "csrf": "",
            "can_operate": False,
            "may": {},
        },
        status_code=status,
    )
