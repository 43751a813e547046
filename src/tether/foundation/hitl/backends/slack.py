"""The Slack approval transport (slack_sdk): an interactive message with Approve and Reject
buttons, and the checks its callback must pass before a click decides anything.

`notify` posts the request to a channel (or a user's DM) with `chat.postMessage`; a click makes
Slack POST a signed interaction payload to tether's `/api/hitl/slack/actions`, which calls
`verify` (Slack's v0 HMAC signature over the timestamp and body, a timestamp at most five
minutes old, the configured workspace), maps the clicking Slack user to an I8 identity through
`users`, decides, and updates the message with `update`. A replayed payload finds the request
decided and changes nothing.

Options (`hitl_transports.slack`): `channel`, `team_id`, `users` ({slack user id: {subject,
roles}}), `token_secret` and `signing_secret` (I7 secret names; default SLACK_BOT_TOKEN and
SLACK_SIGNING_SECRET), `base_url` (Slack's Web API; a stand-in in tests).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier

from tether.foundation.hitl.contract import ApprovalRequest, Approver, CallbackRefused, Decision
from tether.foundation.secrets.config import open_secrets

API = "https://slack.com/api/"


class SlackTransport:
    def __init__(
        self,
        *,
        token: str,
        signing_secret: str,
        channel: str,
        team_id: str | None = None,
        users: Mapping[str, Mapping[str, Any]] | None = None,
        base_url: str = API,
    ) -> None:
        self.channel, self.team_id = channel, team_id
        self.users = {k: dict(v) for k, v in (users or {}).items()}
        self._client = WebClient(token=token, base_url=base_url)
        self._verifier = SignatureVerifier(signing_secret)

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> SlackTransport:
        secrets = open_secrets(settings)
        token = secrets.get(options.pop("token_secret", "SLACK_BOT_TOKEN")).reveal()
        signing = secrets.get(options.pop("signing_secret", "SLACK_SIGNING_SECRET")).reveal()
        return cls(token=token, signing_secret=signing, **options)

    def notify(self, request: ApprovalRequest) -> None:
        why = f"\n{request.reason}" if request.reason else ""
        text = f"Approval needed: {request.action.name} (run {request.run_id}){why}"
        args = json.dumps(request.action.args, indent=2, sort_keys=True)
        self._client.chat_postMessage(
            channel=self.channel,
            text=text,
            blocks=[
                {"type": "section", "text": {"type": "mrkdwn", "text": text}},
                {"type": "section", "text": {"type": "mrkdwn", "text": f"```{args}```"}},
                {
                    "type": "actions",
                    "block_id": "tether_approval",
                    "elements": [
                        _button("approve", "Approve", request.id, "primary"),
                        _button("reject", "Reject", request.id, "danger"),
                    ],
                },
            ],
        )

    def verify(self, body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
        """The interaction payload of a genuine, fresh callback from our workspace; else
        CallbackRefused, and nothing is decided."""
        if not self._verifier.is_valid_request(body, dict(headers)):
            raise CallbackRefused(
                "the Slack callback's signature or timestamp is not valid", forged=True
            )
        try:
            payload: dict[str, Any] = json.loads(parse_qs(body.decode())["payload"][0])
        except (KeyError, ValueError) as e:
            raise CallbackRefused(
                f"the Slack callback carries no payload: {e}", forged=False
            ) from None
        team = (payload.get("team") or {}).get("id")
        if self.team_id is not None and team != self.team_id:
            raise CallbackRefused(f"the Slack callback is from workspace {team!r}", forged=False)
        return payload

    def approver(self, payload: Mapping[str, Any]) -> Approver:
        user = (payload.get("user") or {}).get("id", "")
        known = self.users.get(user)
        if known is None:
            raise CallbackRefused(f"Slack user {user!r} is not mapped to an identity", forged=False)
        return Approver(subject=known["subject"], roles=tuple(known.get("roles", ())))

    def update(self, payload: Mapping[str, Any], decision: Decision) -> None:
        """Replace the buttons with the decision."""
        channel = (payload.get("channel") or {}).get("id") or self.channel
        container, message = payload.get("container") or {}, payload.get("message") or {}
        ts = str(container.get("message_ts") or message.get("ts") or "")
        why = f": {decision.reason}" if decision.reason else ""
        text = f"{decision.action.name} {decision.verdict.value} by {decision.by}{why}"
        self._client.chat_update(
            channel=channel,
            ts=ts,
            text=text,
            blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
        )

    def close(self) -> None:
        """Nothing to release."""


def _button(action: str, label: str, request_id: str, style: str) -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": action,
        "text": {"type": "plain_text", "text": label},
        "value": request_id,
        "style": style,
    }
