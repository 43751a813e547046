"""Who is calling (I8) and may they (roles, audited in I9's log), for every request.

API clients send `Authorization: Bearer <jwt>`. A browser cannot put a header on a link or an
`EventSource`, so it signs in once through a one-time login link (`tether serve` prints it) and
gets an HttpOnly, SameSite=Strict session cookie holding a token from the same provider; every
change it asks for must also carry the CSRF token the pages embed (`X-CSRF-Token` header or a
`csrf` form field), derived from the session so it cannot be guessed from outside.

What a caller may do is I9's decision: each request is an `api` call whose target is its action
(`read`, `cancel`, ...), judged by the API rules (foundation/policy/api.py; by default a viewer
reads and approves, an operator does everything). Every change decision, allow or deny, and
every refused read is written to I9's audit log with the caller's subject and the rule.

Without a configured identity provider the server signs with a key made at start-up that never
leaves the process: only someone holding the printed link (or a token from `issue`) gets in,
which is why such a server binds loopback only.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.metadata import entry_points

from fastapi import Request

from tether.client import Tether
from tether.errors import ConfigurationError, IdentityError, PolicyDenied
from tether.foundation.guards.contract import GuardedCall
from tether.foundation.identity.contract import Identity, IdentityProvider
from tether.foundation.policy.api import open_api_policy
from tether.foundation.policy.config import open_audit_log
from tether.foundation.policy.contract import AuditLog, AuditRecord
from tether.foundation.policy.gate import PolicyGate
from tether.foundation.secrets.contract import Secret
from tether.server.errors import ApiError

SESSION_COOKIE = "tether_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf"
SESSION_SECONDS = 12 * 3600.0
LOGIN_LINK_SECONDS = 24 * 3600.0


def for_tether(t: Tether) -> Authenticator:
    """The tether's configured I8 provider (`configured=True`), else a process-local one;
    decisions go to I9's audit log."""
    try:
        provider, configured = t.foundations.identity, True
    except ConfigurationError:  # no key: TETHER_JWT_KEY unset and no [identity] table
        provider, configured = _ephemeral_provider(), False
    return Authenticator(
        provider, open_audit_log(t.settings), configured, open_api_policy(t.settings)
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _ephemeral_provider() -> IdentityProvider:
    """The I8 `jwt` backend over a random key that lives only in this process."""
    found = {ep.name: ep for ep in entry_points(group="tether.identity")}
    if "jwt" not in found:
        raise ConfigurationError("no 'jwt' backend in entry-point group 'tether.identity'")
    provider = found["jwt"].load()(key=Secret("server-session", secrets.token_urlsafe(48)))
    assert isinstance(provider, IdentityProvider)
    return provider


class Authenticator:
    """Verifies callers and keeps the one-time login links; one per server process."""

    def __init__(
        self,
        provider: IdentityProvider,
        audit: AuditLog | None,
        configured: bool,
        policy: PolicyGate,
    ):
        self.provider, self.audit, self.configured = provider, audit, configured
        self.policy = policy
        self._csrf_key = secrets.token_bytes(32)
        self._links: dict[str, tuple[tuple[str, ...], float]] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        if self.audit is not None:
            self.audit.close()

    # -- signing in --------------------------------------------------------------------------

    def login_link(self, roles: Sequence[str] = ("operator",)) -> str:
        """A token good for one sign-in within a day; `/login?token=...` spends it."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._links[token] = (tuple(roles), time.time() + LOGIN_LINK_SECONDS)
        return token

    def sign_in(self, token: str) -> str:
        """A session token for a login link (spent here) or for a valid I8 token."""
        with self._lock:
            link = self._links.pop(token, None)
        if link is not None:
            roles, expires = link
            if expires < time.time():
                raise IdentityError("login link expired; restart `tether serve` for a new one")
            return self.provider.issue("browser", roles=roles, ttl_seconds=SESSION_SECONDS)
        try:
            identity = self.provider.verify(token)
        except IdentityError:
            raise IdentityError(
                "this login link was already used or never issued; use the link `tether serve` "
                "printed, once"
            ) from None
        return self.provider.issue(
            identity.subject, roles=identity.roles, ttl_seconds=SESSION_SECONDS
        )

    def csrf_token(self, session: str) -> str:
        return hmac.new(self._csrf_key, session.encode(), hashlib.sha256).hexdigest()

    # -- every request -----------------------------------------------------------------------

    def identify(self, request: Request) -> tuple[Identity, str | None]:
        """The caller and, for a browser, its session token (None for a bearer client)."""
        header = request.headers.get("authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise ApiError(401, "unauthenticated", "use 'Authorization: Bearer <token>'")
            return self._verify(token.strip()), None
        session = request.cookies.get(SESSION_COOKIE)
        if session:
            return self._verify(session), session
        raise ApiError(
            401,
            "unauthenticated",
            "sign in: open the login link `tether serve` printed, or send a bearer token "
            "(`tether token issue`)",
        )

    def _verify(self, token: str) -> Identity:
        try:
            return self.provider.verify(token)
        except IdentityError as e:
            raise ApiError(401, "unauthenticated", str(e)) from None

    async def check_csrf(self, request: Request, session: str) -> None:
        sent = request.headers.get(CSRF_HEADER)
        if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            field = (await request.form()).get(CSRF_FIELD)
            sent = field if isinstance(field, str) else None
        if not sent or not hmac.compare_digest(sent, self.csrf_token(session)):
            raise ApiError(
                403, "csrf", "missing or wrong CSRF token; reload the page and try again"
            )

    def permits(self, identity: Identity, action: str) -> tuple[bool, str, str]:
        """(allowed, rule, reason): I9's gate judging the action as an `api` call; nothing
        recorded."""
        call = GuardedCall(
            run_id="", workflow="", step_id="", kind="api", target=action, identity=identity
        )
        try:
            [decision] = self.policy.before(call)
        except PolicyDenied as e:
            decision = e.decisions[-1]
        return decision.outcome == "allow", decision.rule, decision.reason

    def authorise(self, identity: Identity, action: str, request: Request) -> None:
        allowed, rule, reason = self.permits(identity, action)
        if action != "read" or not allowed:
            self._record(identity, action, request, allowed, rule, reason)
        if not allowed:
            roles = ", ".join(identity.roles) or "no role"
            raise ApiError(
                403,
                "forbidden",
                f"{identity.subject} ({roles}) may not {action}: {reason} (policy rule {rule!r})",
            )

    def _record(
        self,
        identity: Identity,
        action: str,
        request: Request,
        allowed: bool,
        rule: str,
        reason: str,
    ) -> None:
        if self.audit is None:
            return
        run_id = request.path_params.get("run_id", "")
        self.audit.record(
            AuditRecord(
                at=datetime.now(UTC),
                run_id=str(run_id),
                workflow="",
                step_id="",
                kind="api",
                target=f"{request.method} {request.url.path}",
                who=identity.subject,
                guard="policy",
                rule=rule,
                outcome="allow" if allowed else "deny",
                reason=f"{action} by roles {list(identity.roles)}: {reason}",
            )
        )
