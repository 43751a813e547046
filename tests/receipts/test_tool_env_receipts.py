"""A tool's process gets a scrubbed environment: nothing of the worker's but what it declares
with `@tool(env=[...])`, whose values are then struck from the journal and the trace."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tether import RunStatus, Tether, tool
from tether.errors import ConfigurationError


def test_a_tool_sees_the_variables_it_declares_and_no_other(
    agent_tether: Callable[..., Tether], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HELPDESK_TOKEN", "hd-token-5f1e9c")
    monkeypatch.setenv("OTHER_API_KEY", "sk-other-not-for-tools")
    t = agent_tether()
    names = ["HELPDESK_TOKEN", "OTHER_API_KEY"]
    run = t.run(t.start("env_probe", {"names": names}))
    assert run.status is RunStatus.COMPLETED, run.error
    assert t.output(run) == {"result": "HELPDESK_TOKEN=15,OTHER_API_KEY=<unset>"}
    stored = [e.value or "" for e in t.journal(run.id)]
    assert not any("hd-token-5f1e9c" in v for v in stored)
    traces = (t.settings.data_path / "traces.jsonl").read_text()
    assert "hd-token-5f1e9c" not in traces


@pytest.mark.parametrize(
    ("env", "said"),
    [("TOKEN", "a list of names"), (["NOT A NAME"], "not a variable name"), (["PATH"], "sets")],
)
def test_env_names_are_checked_when_the_tool_is_declared(env: object, said: str) -> None:
    with pytest.raises(ConfigurationError, match=said):
        tool(replay="pure", env=env)  # type: ignore[arg-type]
