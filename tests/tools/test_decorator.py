"""@tool validates when applied; the registry finds tools by name and by reference."""

from __future__ import annotations

from typing import Any

import pytest

from tests.tools import sample_tools as t
from tether.errors import ConfigurationError, ToolArgumentError
from tether.foundation.tools.contract import PersistenceClass, ReplayClass
from tether.foundation.tools.decorator import tool
from tether.foundation.tools.registry import load_ref, tools


def test_tool_without_replay_class_is_refused_with_the_reason() -> None:
    with pytest.raises(ConfigurationError, match=r"declares no replay class.*unsafe_on_replay"):
        tool()


def undecorated(x: int) -> int:
    return x


def takes_key(idempotency_key: str) -> None: ...


def unannotated(x) -> None:  # type: ignore[no-untyped-def]
    ...


def test_bare_decorator_is_refused_with_the_reason() -> None:
    with pytest.raises(ConfigurationError, match=r"needs arguments.*replay="):
        tool(undecorated)


def test_unknown_replay_class_names_the_choices() -> None:
    with pytest.raises(ConfigurationError, match="'pure', 'idempotent_with_key'"):
        tool(replay="sometimes")


def test_json_schema_offers_name_description_and_parameters() -> None:
    schema = t.add.json_schema()
    assert schema["name"] == "add" and schema["description"] == "Add two numbers."
    assert schema["parameters"]["required"] == ["a"]
    assert schema["parameters"]["properties"]["b"]["default"] == 1


def test_idempotency_key_is_filled_by_the_runner_not_offered_to_models() -> None:
    assert t.charge.takes_key and t.charge.replay is ReplayClass.IDEMPOTENT_WITH_KEY
    assert "idempotency_key" not in t.charge.json_schema()["parameters"]["properties"]
    with pytest.raises(ToolArgumentError, match="idempotency_key"):
        t.charge.validate_args({"ledger": "l", "amount": 1, "idempotency_key": "mine"})


def test_bad_arguments_list_each_bad_field() -> None:
    with pytest.raises(ToolArgumentError) as raised:
        t.add.validate_args({"a": "three", "b": [], "c": 1})
    fields = {e["loc"][0] for e in raised.value.errors}
    assert fields == {"a", "b", "c"}


def test_key_parameter_needs_the_idempotent_class() -> None:
    with pytest.raises(ConfigurationError, match="only for replay='idempotent_with_key'"):
        tool(replay="pure")(takes_key)


def test_unannotated_parameter_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="needs a type annotation"):
        tool(replay="pure")(unannotated)


def test_workspace_tool_needs_a_workspace_name() -> None:
    with pytest.raises(ConfigurationError, match="needs workspace="):
        tool(replay="pure", persistence="persistent_workspace")
    with pytest.raises(ConfigurationError, match="only applies"):
        tool(replay="pure", workspace="w")


def test_nested_function_is_refused_because_sandboxes_import_by_name() -> None:
    def inner(x: int) -> int:
        return x

    with pytest.raises(ConfigurationError, match="top level of an importable module"):
        tool(replay="pure")(inner)


def test_limits_default_from_the_timeout() -> None:
    assert t.send_slowly.limits.cpu_seconds == 2 and t.send_slowly.timeout == 2.0
    assert t.add.persistence is PersistenceClass.EPHEMERAL
    with pytest.raises(ConfigurationError, match="memory_mb must be positive"):
        tool(replay="pure", memory_mb=0)


def test_registry_finds_tools_by_name_and_by_reference() -> None:
    assert tools.get("send_email") is t.send_email
    assert load_ref(t.send_email.ref) is t.send_email
    assert t.send_email.ref == "tests.tools.sample_tools:send_email"
    with pytest.raises(ConfigurationError, match="no tool named 'nope'"):
        tools.get("nope")


def test_registry_refuses_two_functions_with_one_name() -> None:
    fn: Any = t.add.fn
    clash = tool(replay="pure", name="add")
    fn.__module__, saved = "tests.tools.elsewhere", fn.__module__
    try:
        with pytest.raises(ConfigurationError, match="two tools are named 'add'"):
            clash(fn)
    finally:
        fn.__module__ = saved
