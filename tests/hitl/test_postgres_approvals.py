"""`ctx.approval` with I2 and I6 both on PostgreSQL (I6 through TETHER_HITL_DATABASE_URL, in a
schema of its own): the decision wakes the parked run and the request lives in I6's table."""

from __future__ import annotations

import threading
from collections.abc import Callable

import psycopg
import pytest

from tests.postgres.server import fresh_schema
from tether import RunStatus, Tether
from tether.foundation.identity.contract import Identity

pytestmark = pytest.mark.postgres


def test_an_approval_on_postgres(
    hitl: Callable[..., Tether], monkeypatch: pytest.MonkeyPatch
) -> None:
    with fresh_schema("rt") as (url, schema), fresh_schema("hitl") as (_, own):
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f"CREATE SCHEMA {own}")
        monkeypatch.setenv("TETHER_HITL_DATABASE_URL", f"{url}?options=-csearch_path%3D{own}")
        t = hitl(checkpoint="postgres", checkpoint_database_url=url, checkpoint_schema=schema)
        run_id = t.start("deploy_gate", {"version": "9"})
        stop = threading.Event()
        t.run(run_id, stop=stop, on_wait=lambda _: stop.set())
        assert t.status(run_id).status is RunStatus.WAITING
        (request,) = t.approvals(run_id=run_id)
        t.decide(request.id, "approved", identity=Identity(subject="alice", roles=("ops",)))
        assert t.output(t.run(run_id))["by"] == "alice"
        with psycopg.connect(url, autocommit=True) as admin:
            (count,) = admin.execute(f"SELECT count(*) FROM {own}.hitl_requests").fetchone() or (0,)
        assert count == 1
        t.close()  # before its schema goes: a temporal worker records its hosts there
