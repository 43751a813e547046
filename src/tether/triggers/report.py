"""D1-D10 over a window of this deployment's rows: what the CLI prints and the web UI shows."""

from __future__ import annotations

import re
import time

from tether.client import Tether
from tether.errors import InvalidInput
from tether.foundation.evals.store import open_eval_store
from tether.triggers.decisions import Trigger, evaluate
from tether.triggers.evidence import gather

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_window(text: str, where: str = "--since") -> float:
    """`30d`, `12h`, `90m`, `2w`, `45s`: seconds."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if found is None or float(found[1]) <= 0:
        raise InvalidInput(where, f"{text!r} is not a window such as 30d, 12h or 90m")
    return float(found[1]) * _UNITS[found[2]]


def measure(t: Tether, window_seconds: float) -> list[Trigger]:
    evals = open_eval_store(t.settings)
    try:
        return evaluate(gather(t, evals, time.time() - window_seconds), t.settings)
    finally:
        evals.close()
