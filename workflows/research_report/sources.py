"""The offline library the demo agent researches in: short notes, searched by word overlap.

A real deployment points the search tool at the web or a document index; the demo keeps its
sources in the repo so `make demo` needs no network.
"""

from __future__ import annotations

import re

NOTES: dict[str, str] = {
    "checkpoints": (
        "A durable workflow journals each step's result before moving on. After a crash the "
        "function re-runs from the top and every finished step returns its stored result, so "
        "no finished work is repeated."
    ),
    "side-effects": (
        "Side effects such as sending an email belong in tools with a declared replay class: "
        "pure calls may re-run, idempotent calls re-run with the same key, unsafe calls are "
        "never run twice and park the run for a person instead."
    ),
    "timers": (
        "A durable sleep stores its wake-up time and releases the worker; the run holds no "
        "process while it waits, so a run can wait days for a reviewer at no cost."
    ),
    "events": (
        "Human approval arrives as an event. The run parks on wait_for_event with a match on "
        "the event's data and a timeout; the event is stored first, then the run is woken."
    ),
    "leases": (
        "Workers claim runs under a lease and heartbeat it from their own thread. A run whose "
        "worker died is taken over when its lease expires; writes check the lease token, so a "
        "stale worker cannot overwrite the new owner's progress."
    ),
    "versions": (
        "A run is pinned to its workflow name and version. A new version may declare which "
        "older parked runs it can resume; anything else stays stranded rather than running on "
        "the wrong code."
    ),
    "budgets": (
        "Agents loop. A per-run cap on model calls, a cost cap with a warning at half and a "
        "stop or pause at the limit, and loop detection keep a background agent from burning "
        "its budget unobserved."
    ),
    "observability": (
        "Every model and tool call becomes an OpenTelemetry span with the GenAI attributes: "
        "model, tokens, cost, latency. The trace of a run explains what the agent did and why."
    ),
}

_WORD = re.compile(r"[a-z]+")


def words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if len(w) > 3}


def search(query: str, limit: int = 2) -> list[dict[str, str]]:
    """The notes sharing the most words with the query, best first."""
    q = words(query)
    scored = sorted(
        ((len(q & words(title + " " + text)), title) for title, text in NOTES.items()),
        reverse=True,
    )
    return [{"title": t, "text": NOTES[t]} for score, t in scored[:limit] if score > 0]
