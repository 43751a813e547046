"""The webhook approval transport: a signed POST announcing each request to a URL, and the
checks a signed decision coming back must pass before it decides anything.

Both directions are signed alike with a secret from I7 that tether and the receiver share:
`X-Tether-Timestamp` (Unix seconds) and `X-Tether-Signature: v1=<hex>`, the HMAC-SHA256 of
`"<timestamp>." + body`. The receiver checks ours the same way; `verify` refuses a callback
whose signature is wrong or whose timestamp is more than five minutes off, so a captured
callback cannot be replayed later, and one replayed at once finds its request decided.

The callback's JSON body names the request, the verdict, the receiver's user who decided (mapped
to an I8 identity through `users`, as Slack's are), and the hash of the arguments that user
saw: a decision on arguments the request no longer holds is refused.

Options (`hitl_transports.webhook`): `url` (where requests are announced), `users` ({user:
{subject, roles}}), `secret` (an I7 secret name; default TETHER_WEBHOOK_SECRET), `timeout`
(seconds for the POST, default 10).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

import httpx

from tether.foundation.hitl.contract import (
    ApprovalError,
    ApprovalRequest,
    Approver,
    CallbackRefused,
    Verdict,
)
from tether.foundation.secrets.config import open_secrets

TIMESTAMP, SIGNATURE = "X-Tether-Timestamp", "X-Tether-Signature"
TOLERANCE = 300.0  # seconds a signed timestamp may be off, either way
ANNOUNCED = "tether.approval.requested"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


class WebhookTransport:
    def __init__(
        self,
        *,
        url: str,
        secret: str,
        users: Mapping[str, Mapping[str, Any]] | None = None,
        timeout: float = 10.0,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ApprovalError(f"the webhook transport's url must be http(s), not {url!r}")
        self.url, self._secret, self._timeout = url, secret, timeout
        self.users = {k: dict(v) for k, v in (users or {}).items()}

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> WebhookTransport:
        name = options.pop("secret", "TETHER_WEBHOOK_SECRET")
        return cls(secret=open_secrets(settings).get(name).reveal(), **options)

    def notify(self, request: ApprovalRequest) -> None:
        body = json.dumps(
            {"type": ANNOUNCED, "request": request.model_dump(mode="json")}, sort_keys=True
        ).encode()
        ts = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP: ts,
            SIGNATURE: sign(self._secret, ts, body),
        }
        try:
            answer = httpx.post(self.url, content=body, headers=headers, timeout=self._timeout)
        except httpx.HTTPError as e:
            raise ApprovalError(f"the approval webhook {self.url} cannot be reached: {e}") from e
        if answer.status_code >= 300:
            raise ApprovalError(
                f"the approval webhook {self.url} answered {answer.status_code} to request "
                f"{request.id!r}; it must answer 2xx"
            )

    def verify(self, body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
        """The decision a genuine, fresh callback carries; else CallbackRefused, and nothing is
        decided."""
        ts, given = headers.get(TIMESTAMP, ""), headers.get(SIGNATURE, "")
        if not hmac.compare_digest(sign(self._secret, ts, body), given):
            raise CallbackRefused("the webhook callback's signature is not valid", forged=True)
        try:
            stale = abs(time.time() - float(ts)) > TOLERANCE
        except ValueError:
            stale = True
        if stale:
            raise CallbackRefused(
                f"the webhook callback's timestamp {ts!r} is not within {TOLERANCE:g} s of now",
                forged=True,
            )
        try:
            payload: dict[str, Any] = json.loads(body)
            Verdict(payload["verdict"])
            if not isinstance(payload["request_id"], str) or not payload.get("args_hash"):
                raise ValueError("request_id and args_hash are required")
        except (ValueError, KeyError, TypeError) as e:
            raise CallbackRefused(
                f"the webhook callback is not a decision: {e!r}; it needs request_id, verdict "
                "(approved, rejected, edited), by and args_hash",
                forged=False,
            ) from None
        return payload

    def approver(self, payload: Mapping[str, Any]) -> Approver:
        user = str(payload.get("by", ""))
        known = self.users.get(user)
        if known is None:
            raise CallbackRefused(
                f"webhook user {user!r} is not mapped to an identity", forged=False
            )
        return Approver(subject=known["subject"], roles=tuple(known.get("roles", ())))

    def close(self) -> None:
        """Nothing to release: each POST has its own connection."""
