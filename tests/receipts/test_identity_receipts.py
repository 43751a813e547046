"""I8 feeds I9 through the runtime: a run records who started it (from a verified token), and
the policy decides each tool call by that caller's roles. A bad token starts nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tether import RunStatus, Tether
from tether.errors import IdentityError

KEY = "k" * 48
RULES = (
    "rules:\n"
    "  - name: ops-may-delete\n"
    "    effect: allow\n"
    "    tool: 'delete_*'\n"
    "    roles: [ops]\n"
    "  - name: no-deletes\n"
    "    effect: deny\n"
    "    reason: only ops may delete\n"
    "    tool: 'delete_*'\n"
)


@pytest.fixture
def guarded(
    agent_tether: Callable[..., Tether], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Tether:
    monkeypatch.setenv("TETHER_JWT_KEY", KEY)
    rules = tmp_path / "policy.yaml"
    rules.write_text(RULES)
    return agent_tether(policy={"rules": str(rules)})


def test_a_callers_roles_from_a_verified_token_decide_the_tool_call(
    guarded: Tether, tmp_path: Path
) -> None:
    marker = tmp_path / "deleted.txt"
    ops = guarded.issue_token("ops:ana", roles=["ops"])
    run = guarded.run(guarded.start("cleanup", {"marker": str(marker)}, token=ops))
    assert run.status is RunStatus.COMPLETED and marker.exists()
    assert run.meta["identity"]["subject"] == "ops:ana"  # the run records who started it
    (allowed,) = [
        r for r in guarded.foundations.guards.audit.query(run_id=run.id) if r.guard == "policy"
    ]
    assert (allowed.rule, allowed.outcome, allowed.who) == ("ops-may-delete", "allow", "ops:ana")

    marker.unlink()
    intern = guarded.issue_token("dev:bo", roles=["dev"])
    denied = guarded.run(guarded.start("cleanup", {"marker": str(marker)}, token=intern))
    assert denied.status is RunStatus.FAILED and not marker.exists()
    assert "no-deletes" in json.loads(denied.error or "{}")["message"]


@pytest.mark.parametrize(
    ("token", "reason"),
    [("not-a-jwt", "malformed"), ("expired", "expired"), ("other-audience", "audience")],
)
def test_a_bad_token_starts_nothing_and_says_why(
    guarded: Tether, tmp_path: Path, token: str, reason: str
) -> None:
    import jwt

    if token == "expired":
        token = guarded.issue_token("ops:ana", roles=["ops"], ttl_seconds=-10)
    elif token == "other-audience":
        claims = {"sub": "x", "aud": "elsewhere", "iss": "tether", "iat": 0, "exp": 2**40}
        token = jwt.encode(claims, KEY)
    with pytest.raises(IdentityError) as err:
        guarded.start("cleanup", {"marker": str(tmp_path / "m")}, token=token)
    assert reason in str(err.value).lower()
    assert guarded.list() == []
