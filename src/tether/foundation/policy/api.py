"""Who may do what through tether's HTTP API, as I9 rules: the same `PolicyRules` and
`PolicyGate` that judge tool and model calls, over calls of kind `api` whose target is the
action (`read`, `start`, `cancel`, `retry`, `fork`, `resolve`, `budget`, `event`,
`schedule`, `approve`). A rule names actions with `action:` (a glob).

    [policy]
    api_rules = "api-policy.yaml"   # relative to tether.toml; replaces the defaults below

Kept apart from the call rules on purpose: a deployment's `default: deny` for agents' tool
calls must not lock its operators out of the API, nor a broad tool rule reach a person.
Without a file, a viewer reads and approves (the broker still checks that the caller is one
of the request's approvers), an operator (or admin) may do everything, anyone else nothing.
"""

from __future__ import annotations

from pathlib import Path

from tether.foundation.policy.config import PolicyConfig
from tether.foundation.policy.gate import PolicyGate
from tether.foundation.policy.rules import PolicyRules, Rule, load_rules
from tether.settings import Settings

ACTIONS = (
    "read",
    "start",
    "cancel",
    "retry",
    "fork",
    "resolve",
    "budget",
    "event",
    "schedule",
    "approve",
)

DEFAULT_API_RULES = PolicyRules(
    default="deny",
    rules=(
        Rule(
            name="operators-operate",
            effect="allow",
            action="*",
            roles=("operator", "admin"),
            reason="operators and admins may do everything",
        ),
        Rule(
            name="viewers-read",
            effect="allow",
            action="read",
            roles=("viewer",),
            reason="viewers may read",
        ),
        Rule(
            name="viewers-approve",
            effect="allow",
            action="approve",
            roles=("viewer",),
            reason="viewers may decide approvals they are approvers of",
        ),
        Rule(
            name="others-may-not",
            effect="deny",
            reason="needs the operator role (a viewer may only read and approve)",
        ),
    ),
)


def open_api_policy(settings: Settings) -> PolicyGate:
    """The gate over `[policy] api_rules`, else over `DEFAULT_API_RULES`."""
    config = PolicyConfig.model_validate((settings.model_extra or {}).get("policy", {}))
    if config.api_rules is None:
        return PolicyGate(DEFAULT_API_RULES)
    base = settings.config_file.parent if settings.config_file else Path.cwd()
    return PolicyGate(load_rules(base / config.api_rules))
