"""I9 from the `[policy]` table of tether.toml.

    [policy]
    rules = "policy.yaml"     # relative to tether.toml; no file: every call allowed, and audited
    api_rules = "api.yaml"    # who may do what through the HTTP API (policy/api.py)
    default = "deny"          # overrides the rules file's default (production: deny)
    backend = "postgres"      # audit log (group `tether.audit`); default: the URL's scheme

The audit log lives in `TETHER_POLICY_DATABASE_URL`, else `TETHER_DATABASE_URL`, else the
data directory's SQLite file; its backend follows that URL's scheme unless named.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from tether.foundation.loader import backend_for_url, open_backend
from tether.foundation.policy.contract import AuditLog
from tether.foundation.policy.gate import PolicyGate
from tether.foundation.policy.rules import PolicyRules, load_rules
from tether.settings import Settings


class PolicyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: Path | None = None
    api_rules: Path | None = None
    default: Literal["allow", "deny"] | None = None
    backend: str | None = None


def open_policy(settings: Settings) -> tuple[PolicyGate, AuditLog]:
    """The policy gate and the audit log its decisions (and I10's trips) are written to."""
    config = PolicyConfig.model_validate((settings.model_extra or {}).get("policy", {}))
    rules = PolicyRules()
    if config.rules is not None:
        base = settings.config_file.parent if settings.config_file else Path.cwd()
        rules = load_rules(base / config.rules)
    if config.default is not None:
        rules = rules.model_copy(update={"default": config.default})
    return PolicyGate(rules), open_audit_log(settings, config.backend)


def open_audit_log(settings: Settings, backend: str | None = None) -> AuditLog:
    """The audit backend by name, or by the policy database URL."""
    if backend is None:
        backend = backend_for_url("audit", settings.database_url_for("policy"), database="policy")
    return open_backend("audit", backend, AuditLog, settings)
