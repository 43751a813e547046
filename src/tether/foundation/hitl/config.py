"""Opening I6 from settings: the broker for `TETHER_HITL_DATABASE_URL` (else
`TETHER_DATABASE_URL`, else the data directory's SQLite file), found through entry points."""

from __future__ import annotations

from tether.foundation.hitl.contract import ApprovalTransport, HITLBroker
from tether.foundation.loader import backend_for_url, open_backend
from tether.settings import Settings


def open_hitl(settings: Settings) -> HITLBroker:
    name = backend_for_url("hitl", settings.database_url_for("hitl"))
    return open_backend("hitl", name, HITLBroker, settings)


def open_transports(settings: Settings) -> dict[str, ApprovalTransport]:
    """The transports `hitl_transports` names (`{"webhook": {...options}}`), by name; the local
    one (CLI, web UI) needs none."""
    configured = getattr(settings, "hitl_transports", {}) or {}
    return {
        name: open_backend("hitl_transport", name, ApprovalTransport, settings, **dict(options))
        for name, options in configured.items()
    }
