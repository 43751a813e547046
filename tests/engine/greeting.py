"""What both deploys of the greeter share: its records and its step (no workflow, so importing
it registers no version)."""

from __future__ import annotations

from pydantic import BaseModel


class Greeting(BaseModel):
    who: str


class Reply(BaseModel):
    text: str


def reply(who: str, version: str) -> str:
    return f"hello {who}, from {version}"
