"""The triage agent's side effects, each declared with what a crash may do to it."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tether import tool


@tool(
    replay="idempotent_with_key", persistence="persistent_workspace", workspace="pager", timeout=20
)
def page_oncall(ticket_id: str, queue: str, idempotency_key: str) -> dict[str, str]:
    """Page the on-call engineer for a queue. The pager deduplicates by key (here: one file
    per key), so a page re-sent after a crash does not wake anyone twice."""
    page = Path.cwd() / f"{idempotency_key}.json"
    if not page.exists():
        page.write_text(json.dumps({"ticket_id": ticket_id, "queue": queue, "at": time.time()}))
    return {"page": page.name, "queue": queue}


@tool(replay="unsafe_on_replay", persistence="persistent_workspace", workspace="outbox", timeout=20)
def email_customer(ticket_id: str, subject: str, body: str) -> str:
    """Send the customer an email. Mail cannot be unsent and the mail server takes no key, so
    a send interrupted by a crash is never repeated on its own: a person decides."""
    with (Path.cwd() / "sent.log").open("a") as log:
        log.write(json.dumps({"ticket_id": ticket_id, "subject": subject, "body": body}) + "\n")
    return f"sent to the customer of {ticket_id}"
