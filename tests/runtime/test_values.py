"""A step's first run hands the workflow what a replay of its journal entry would."""

from __future__ import annotations

import math
from typing import Any

import pytest
from pydantic import BaseModel

from tether.runtime.values import Codec, adapter_for


class Point(BaseModel):
    x: int


CODEC = Codec(None, 1 << 20)


@pytest.mark.parametrize(
    ("value", "tp"),
    [
        (17, Any),
        (17, int),
        ("é\n", Any),
        ("x", str),
        (True, Any),
        (None, Any),
        (True, int),  # read back by the int adapter as 1
        (math.nan, Any),  # written as null
        (2.5, Any),
        ((1, "a"), Any),  # read back as a list
        (Point(x=1), Point),  # read back as a new model
        ({"k": [1, 2]}, Any),
    ],
)
def test_the_first_run_returns_what_a_replay_of_the_entry_returns(value: Any, tp: Any) -> None:
    adapter = adapter_for(tp)
    text = CODEC.encode(value, adapter)
    replayed = CODEC.decode(text, adapter)
    first = CODEC.journal_form(value, text, adapter)
    assert type(first) is type(replayed)
    assert first == replayed


@pytest.mark.parametrize(("value", "tp"), [(17, int), (17, Any), ("x", Any), (None, Any)])
def test_a_value_json_gives_back_unchanged_is_returned_without_decoding(
    value: Any, tp: Any
) -> None:
    adapter = adapter_for(tp)
    assert CODEC.journal_form(value, "not json: never read", adapter) is value
