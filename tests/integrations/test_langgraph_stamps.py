"""A packed checkpoint keeps its time as an offset from its uuid6 id's and its versions as
counter and float (stamps.py), and reads back exactly as it was put, in the usual forms and
in any other."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.base.id import uuid6

from tether import Tether
from tether.integrations.langgraph import TetherSaver
from tether.integrations.langgraph.stamps import compact


def _put_and_get(saver: TetherSaver, checkpoint: dict[str, Any]) -> Any:
    config = saver.put(
        {"configurable": {"thread_id": "t", "checkpoint_ns": ""}},
        checkpoint,  # type: ignore[arg-type]
        {"source": "loop", "step": 1},
        {},
    )
    got = saver.get_tuple(config)
    assert got is not None
    return got.checkpoint


def test_a_checkpoint_in_langgraphs_forms_is_kept_short_and_reads_back_as_put(
    make_tether: Callable[..., Tether],
) -> None:
    saver = TetherSaver(make_tether("memory"), graph="chat@1.0.0")
    version = saver.get_next_version(saver.get_next_version(None, None), None)
    checkpoint = {**empty_checkpoint(), "channel_versions": {"messages": version},
                  "versions_seen": {"agent": {"messages": version}}}  # fmt: skip

    short = compact({k: v for k, v in checkpoint.items() if k != "id"}, checkpoint["id"])
    assert type(short["ts"]) is int
    assert short["channel_versions"]["messages"] == [2, float(version.split(".", 1)[1])]
    assert _put_and_get(saver, checkpoint) == checkpoint


@pytest.mark.parametrize(
    ("checkpoint_id", "ts", "version"),
    [
        ("1f0", "2026-11-30T04:23:53.052413+00:00", 3),  # an id holding no time
        (str(uuid6()), "2026-11-30T04:23:53", "7"),  # a time with no zone, a bare version
        (str(uuid6()), "not a time", "00000000000000000000000000000001.0.nan"),
        (str(uuid6()), "2026-11-30T04:23:53+02:00", "00000000000000000000000000000001.0.5"),
    ],
)
def test_a_checkpoint_in_other_forms_reads_back_as_put(
    make_tether: Callable[..., Tether], checkpoint_id: str, ts: str, version: Any
) -> None:
    saver = TetherSaver(make_tether("memory"), graph="chat@1.0.0")
    checkpoint = {**empty_checkpoint(), "id": checkpoint_id, "ts": ts,
                  "channel_versions": {"messages": version},
                  "versions_seen": {"agent": {"messages": version}}}  # fmt: skip
    assert _put_and_get(saver, checkpoint) == checkpoint
