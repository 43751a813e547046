"""`tether worker --until-idle` ends with nothing of it still using the database: its listener
thread was inside wait_for_work when the CLI closed the checkpointer, and logged
"Cannot operate on a closed database" on about one exit in ten."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import pytest

from tether import Tether


def test_worker_until_idle_returns_only_after_its_listener_is_done_with_the_database(
    make_tether: Callable[..., Tether], caplog: pytest.LogCaptureFixture
) -> None:
    t = make_tether(poll_interval=0.3)
    t.start("steps", {"n": 1})
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            t.worker(2).run(until_idle=True)
            alive = [th.name for th in threading.enumerate() if th.name == "tether-notify"]
            assert alive == []  # so closing the checkpointer now races nothing
        t.close()
    assert not [r for r in caplog.records if "closed database" in r.getMessage()]
