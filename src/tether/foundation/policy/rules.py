"""I9 rules: YAML that says which calls may run, read top to bottom, first match wins.

    default: deny                  # when no rule matches (allow if omitted; deny in production)
    rules:
      - name: no-prod-writes       # named in the audit log and in PolicyDenied
        effect: deny
        reason: production paths are read-only for agents
        tool: "write_*"            # glob on the tool name (tool calls only)
        arguments: {path: "^/prod/"}   # regex searched in each named argument's text
      - name: restricted-to-local
        effect: deny
        task_class: "*"            # glob on the task class (model calls only)
        sensitivity: [restricted]
        roles: [contractor]        # the caller has any of these roles
      - name: ops-may-do-anything
        effect: allow
        subject: "ops:*"           # glob on the caller's subject
        workflow: billing          # name (any version) or a glob on name@version
      - name: big-refunds-need-finance
        effect: require_approval   # the call runs once one of `approvers` approves it (I6)
        approvers: ["role:finance"]
        tool: refund
        arguments: {amount: "^[0-9]{4,}"}
      - name: viewers-read
        effect: allow
        action: read               # glob on an HTTP API action (api calls only: policy/api.py)
        roles: [viewer]

Every condition a rule states must hold for it to match; a rule that states none matches all.
`authenticated: false` matches runs started without an identity.

`require_approval` is asked in the workflow before the call is dispatched, exactly as for a
tool declared `requires_approval`, with the rule's approvers (a call's own choice of approvers
cannot widen who may release what policy guards). The gate then lets the call through only
with the approval that released it.
"""

from __future__ import annotations

import json
import re
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from tether.errors import ConfigurationError

if TYPE_CHECKING:
    from tether.foundation.guards.contract import GuardedCall

Effect = Literal["allow", "deny", "require_approval"]


class Rule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    effect: Effect
    reason: str = ""
    tool: str | None = None
    task_class: str | None = None
    action: str | None = None
    workflow: str | None = None
    subject: str | None = None
    roles: tuple[str, ...] = ()
    authenticated: bool | None = None
    sensitivity: tuple[str, ...] = ()
    arguments: dict[str, re.Pattern[str]] = Field(default_factory=dict)
    approvers: tuple[str, ...] = ()  # identities or `role:<name>`; require_approval only

    @model_validator(mode="after")
    def _approvers_with_require_approval(self) -> Rule:
        if (self.effect == "require_approval") != bool(self.approvers):
            raise ValueError(
                f"rule {self.name!r}: effect require_approval needs approvers "
                "(identities or 'role:<name>'), and only it takes them"
            )
        return self

    @field_validator("arguments", mode="before")
    @classmethod
    def _compile(cls, value: dict[str, str]) -> dict[str, re.Pattern[str]]:
        try:
            return {k: re.compile(v) for k, v in value.items()}
        except re.error as e:
            raise ValueError(f"bad argument pattern: {e}") from e

    def matches(self, call: GuardedCall) -> bool:
        who = call.identity
        return (
            (self.tool is None or (call.kind == "tool" and fnmatchcase(call.target, self.tool)))
            and (
                self.task_class is None
                or (call.kind == "model" and fnmatchcase(call.target, self.task_class))
            )
            and (
                self.action is None
                or (call.kind == "api" and fnmatchcase(call.target, self.action))
            )
            and (self.workflow is None or _workflow_matches(self.workflow, call.workflow))
            and (
                self.subject is None or (who is not None and fnmatchcase(who.subject, self.subject))
            )
            and (not self.roles or (who is not None and bool(set(self.roles) & set(who.roles))))
            and (self.authenticated is None or self.authenticated == (who is not None))
            and (not self.sensitivity or call.sensitivity in self.sensitivity)
            and all(
                name in call.arguments and pattern.search(_text(call.arguments[name]))
                for name, pattern in self.arguments.items()
            )
        )


class PolicyRules(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    default: Literal["allow", "deny"] = "allow"
    rules: tuple[Rule, ...] = ()

    @field_validator("rules")
    @classmethod
    def _unique_names(cls, rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
        names = [r.name for r in rules]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"rule names must be unique (audit rows name them): {twice}")
        return rules

    def decide(self, call: GuardedCall) -> tuple[str, Effect, str]:
        """(rule name, effect, reason) of the first matching rule, else of the default."""
        for rule in self.rules:
            if rule.matches(call):
                return rule.name, rule.effect, rule.reason or f"rule {rule.name!r} matched"
        return "default", self.default, f"no rule matched; the default is {self.default}"

    @property
    def asks_approval(self) -> bool:
        """Whether any rule demands approval: if none does, no call need be judged for it."""
        return any(rule.effect == "require_approval" for rule in self.rules)

    def approval_rule(self, call: GuardedCall) -> Rule | None:
        """The rule that decides `call` if it demands an approval first."""
        for rule in self.rules:
            if rule.matches(call):
                return rule if rule.effect == "require_approval" else None
        return None


def load_rules(path: Path) -> PolicyRules:
    """The rules in `path`, or a ConfigurationError that names the file and what is wrong."""
    # Imported here: `import tether` loads this module (Foundations assembles the guard chain),
    # and only a process with a rules file needs a YAML parser, 35-80 ms of a tool child's start.
    import yaml  # type: ignore[import-untyped]

    try:
        data: Any = yaml.safe_load(path.read_text()) or {}
        return PolicyRules.model_validate(data)
    except (OSError, yaml.YAMLError) as e:
        raise ConfigurationError(f"cannot read policy rules {path}: {e}") from e
    except ValidationError as e:
        raise ConfigurationError(f"bad policy rules in {path}: {e}") from e


def _workflow_matches(pattern: str, workflow: str) -> bool:
    target = workflow if "@" in pattern else workflow.partition("@")[0]
    return fnmatchcase(target, pattern)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
