"""What the incident tracker holds for the shipped example incidents: each a timeline of
(time, kind, text) entries as an on-call tool exports them. A real deployment points
`fetch_timeline` at its tracker's API instead."""

from __future__ import annotations

INCIDENTS: dict[str, list[dict[str, str]]] = {
    "INC-101": [
        {"at": "09:02", "kind": "alert", "text": "checkout p99 latency above 4 s"},
        {"at": "09:05", "kind": "page", "text": "on-call paged for checkout"},
        {"at": "09:11", "kind": "cause", "text": "a deploy doubled the payment client timeout"},
        {"at": "09:14", "kind": "action", "text": "the deploy was rolled back"},
        {"at": "09:20", "kind": "resolved", "text": "checkout latency back under 300 ms"},
    ],
    "INC-102": [
        {"at": "22:40", "kind": "alert", "text": "all API requests failing with 503"},
        {"at": "22:41", "kind": "page", "text": "on-call and incident commander paged"},
        {"at": "22:55", "kind": "cause", "text": "the primary database ran out of disk"},
        {"at": "23:05", "kind": "action", "text": "old WAL segments removed and disk grown"},
        {"at": "23:30", "kind": "action", "text": "the replica was re-synced"},
        {"at": "23:48", "kind": "resolved", "text": "API error rate back to baseline"},
    ],
}
