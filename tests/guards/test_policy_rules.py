"""I9 rules: read top to bottom, the first rule whose every condition holds decides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tether.errors import ConfigurationError, PolicyDenied
from tether.foundation.guards.contract import GuardedCall
from tether.foundation.identity.contract import Identity
from tether.foundation.policy.gate import PolicyGate
from tether.foundation.policy.rules import PolicyRules, load_rules

ALICE = Identity(subject="user:alice", roles=("analyst",))
OPS = Identity(subject="ops:bob", roles=("admin",))


def call(**kw: Any) -> GuardedCall:
    fields: dict[str, Any] = {
        "run_id": "r", "workflow": "billing@1.2.0", "step_id": "0.1", "kind": "tool",
        "target": "write_file", "arguments": {"path": "/tmp/x"}, "identity": ALICE, **kw,
    }  # fmt: skip
    return GuardedCall.model_validate(fields)


def rules(*items: dict[str, Any], default: str = "allow") -> PolicyRules:
    return PolicyRules.model_validate({"default": default, "rules": list(items)})


def test_the_first_matching_rule_wins() -> None:
    policy = rules(
        {"name": "ops-anything", "effect": "allow", "subject": "ops:*"},
        {"name": "no-writes", "effect": "deny", "tool": "write_*"},
    )
    assert policy.decide(call(identity=OPS))[:2] == ("ops-anything", "allow")
    assert policy.decide(call())[:2] == ("no-writes", "deny")


def test_no_match_falls_to_the_default_which_may_be_deny() -> None:
    policy = rules({"name": "x", "effect": "allow", "tool": "read"}, default="deny")
    rule, effect, reason = policy.decide(call())
    assert (rule, effect) == ("default", "deny")
    assert "no rule matched" in reason


def test_argument_patterns_match_the_named_argument_only() -> None:
    policy = rules({"name": "prod", "effect": "deny", "arguments": {"path": "^/prod/"}})
    assert policy.decide(call(arguments={"path": "/prod/db"}))[0] == "prod"
    assert policy.decide(call(arguments={"path": "/tmp/prod/"}))[0] == "default"
    assert policy.decide(call(arguments={}))[0] == "default"


def test_roles_match_when_the_caller_has_any_of_them() -> None:
    policy = rules({"name": "admins", "effect": "allow", "roles": ["admin", "owner"]})
    assert policy.decide(call(identity=OPS))[0] == "admins"
    assert policy.decide(call())[0] == "default"
    assert policy.decide(call(identity=None))[0] == "default"


def test_a_rule_for_anonymous_runs_matches_only_them() -> None:
    policy = rules({"name": "anon", "effect": "deny", "authenticated": False})
    assert policy.decide(call(identity=None))[0] == "anon"
    assert policy.decide(call())[0] == "default"


def test_a_workflow_name_matches_every_version_and_a_glob_matches_name_at_version() -> None:
    by_name = rules({"name": "w", "effect": "deny", "workflow": "billing"})
    by_version = rules({"name": "w", "effect": "deny", "workflow": "billing@2.*"})
    assert by_name.decide(call())[0] == "w"
    assert by_version.decide(call())[0] == "default"
    assert by_version.decide(call(workflow="billing@2.0.1"))[0] == "w"


def test_task_class_and_sensitivity_rules_judge_only_model_calls() -> None:
    policy = rules(
        {"name": "no-restricted-summaries", "effect": "deny", "task_class": "summar*",
         "sensitivity": ["restricted"]},
    )  # fmt: skip
    model = {"kind": "model", "target": "summarize", "arguments": {}}
    assert policy.decide(call(**model, sensitivity="restricted"))[0] == "no-restricted-summaries"
    assert policy.decide(call(**model, sensitivity="internal"))[0] == "default"
    assert policy.decide(call(target="summarize", sensitivity="restricted"))[0] == "default"


def test_rules_load_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "default: deny\nrules:\n  - name: reads\n    effect: allow\n    tool: 'read_*'\n"
    )
    policy = load_rules(path)
    assert policy.decide(call(target="read_file"))[0] == "reads"
    assert policy.decide(call())[1] == "deny"


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("rules:\n  - {name: a, effect: allow}\n  - {name: a, effect: deny}\n", "unique"),
        ("rules:\n  - {name: a, effect: maybe}\n", "effect"),
        ("rules:\n  - {name: a, effect: deny, tool_name: x}\n", "tool_name"),
        ("rules:\n  - {name: a, effect: deny, arguments: {p: '(('}}\n", "bad argument pattern"),
        ("rules: [\n", "cannot read"),
        ("rules:\n  - {name: a, effect: require_approval, tool: x}\n", "needs approvers"),
        ("rules:\n  - {name: a, effect: deny, approvers: [bob]}\n", "only it takes them"),
        ("default: require_approval\n", "default"),
    ],
)
def test_a_bad_rules_file_is_a_configuration_error_naming_it(
    tmp_path: Path, text: str, complaint: str
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(ConfigurationError, match=complaint) as caught:
        load_rules(path)
    assert str(path) in str(caught.value)


REFUNDS = {
    "name": "big-refunds", "effect": "require_approval", "approvers": ["role:finance"],
    "tool": "refund", "arguments": {"amount": "^[0-9]{4,}$"},
}  # fmt: skip


def test_a_require_approval_rule_names_its_approvers_for_a_matching_call_only() -> None:
    policy = rules({"name": "ops", "effect": "allow", "subject": "ops:*"}, REFUNDS)
    big = call(target="refund", arguments={"amount": 5000})
    rule = policy.approval_rule(big)
    assert rule is not None and rule.approvers == ("role:finance",)
    assert policy.approval_rule(call(target="refund", arguments={"amount": 50})) is None
    assert policy.approval_rule(call(target="refund_all", arguments={"amount": 5000})) is None
    assert policy.approval_rule(big.model_copy(update={"identity": OPS})) is None  # allow first


def test_the_gate_lets_a_call_a_rule_demands_approval_for_through_only_with_one() -> None:
    gate = PolicyGate(rules(REFUNDS))
    big = call(target="refund", arguments={"amount": 5000})
    with pytest.raises(PolicyDenied, match="needs an approval and came without one"):
        gate.before(big)
    (decision,) = gate.before(big.model_copy(update={"approval": "run-1:3"}))
    assert (decision.rule, decision.outcome) == ("big-refunds", "allow")
    assert "released by approval run-1:3" in decision.reason
    (other,) = gate.before(call(target="refund", arguments={"amount": 50}))
    assert (other.rule, other.outcome) == ("default", "allow")


def test_an_action_rule_judges_only_http_api_actions_and_a_tool_rule_never_does() -> None:
    policy = rules(
        {"name": "no-writes", "effect": "deny", "tool": "*"},
        {"name": "analysts-read", "effect": "allow", "action": "read", "roles": ["analyst"]},
        default="deny",
    )
    api = call(kind="api", target="read", workflow="", arguments={})
    assert policy.decide(api)[:2] == ("analysts-read", "allow")
    assert policy.decide(call(kind="api", target="cancel"))[:2] == ("default", "deny")
    assert policy.decide(call(target="read"))[:2] == ("no-writes", "deny")  # a tool named read
