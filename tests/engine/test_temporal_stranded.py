"""Stranded on the temporal engine: Temporal workers record the versions they host with their
heartbeats, as local workers do, so a parked run is stranded exactly while no live worker of
either engine hosts or resumes its version."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from tether import RunStatus, Tether
from tether.foundation.checkpoint.contract import NewRun

pytestmark = pytest.mark.temporal


@pytest.fixture(params=["sqlite", "postgres"])
def t(
    request: pytest.FixtureRequest, make_tether: Callable[..., Tether], temporal_server: str
) -> Iterator[Tether]:
    options = {
        "engine": "temporal",
        "temporal_address": temporal_server,
        "temporal_queue_prefix": f"t{uuid.uuid4().hex[:12]}",
    }
    if request.param == "sqlite":
        yield make_tether("sqlite", **options)
        return
    from tests.postgres.server import fresh_schema

    with fresh_schema("strand") as (url, schema):
        t = make_tether(
            "postgres", **options, checkpoint_database_url=url, checkpoint_schema=schema
        )
        yield t
        t.close()  # before its schema goes: a temporal worker records its hosts there


def _pinned(t: Tether, version: str) -> str:
    """A run an older deploy started, pinned to `upgrade@version` (this process has 1.1.0,
    which resumes 1.0.*)."""
    run, _ = t.checkpointer.create_run(
        NewRun(
            id=f"old-{version}",
            workflow="upgrade",
            version=version,
            input=json.dumps({"seconds": 600}),
        )
    )
    return run.id


def _stranded(t: Tether) -> set[str]:
    return {r.id for r in t.list(stranded=True)}


def _until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def test_a_run_is_stranded_only_while_no_live_temporal_worker_hosts_or_resumes_it(
    t: Tether,
) -> None:
    covered, orphan = _pinned(t, "1.0.0"), _pinned(t, "0.9.0")
    parked = t.start("approval", {"ticket": "T-9", "timeout": 600})
    assert _stranded(t) == {covered, orphan, parked}  # no worker has recorded anything yet

    worker = t.worker()
    th = threading.Thread(target=worker.run, daemon=True)
    th.start()
    _until(lambda: t.status(parked).status is RunStatus.WAITING)
    _until(lambda: t.status(covered).status is RunStatus.SLEEPING)  # resumed by 1.1.0's code
    # hosted (approval@1.0.0) or resumed (upgrade 1.0.* by 1.1.0): only 0.9.0 is stranded
    assert _stranded(t) == {orphan}
    assert t.status(orphan).status is RunStatus.PENDING  # never ran on the wrong code

    worker.stop()
    th.join(30)
    assert not th.is_alive()
    # a clean stop records that it hosts nothing: stranded at once, not a lease later
    assert _stranded(t) == {covered, orphan, parked}
