"""Run ids: time-ordered (so listings sort by creation) and unguessable."""

from __future__ import annotations

import secrets
import time


def new_run_id() -> str:
    return f"{time.time_ns() // 1_000_000:011x}{secrets.token_hex(5)}"
