"""The HITL receipts across worker processes: a run parked on an approval resumes on another
worker without repeating a model or tool call, and an approved call killed mid-dispatch is
neither sent twice nor released by a second approval."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fakes.openai_server import OpenAIServer
from tests.receipts.conftest import on_openai
from tests.workers import kill_worker_when, run_worker_until
from tether import RunStatus, Tether
from tether.foundation.identity.contract import Identity

pytestmark = pytest.mark.slow

OPS = Identity(subject="alice", roles=("ops",))
ENV = {"TETHER_WORKFLOWS": json.dumps(["tests.hitl.flows"])}


@pytest.fixture
def openai_srv(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIServer]:
    monkeypatch.setenv("TEST_OPENAI_KEY", "sk-test")
    server = OpenAIServer()
    yield server
    server.close()


def test_hitl_resume_hits_the_cache(
    hitl: Callable[..., Tether], openai_srv: OpenAIServer, tmp_path: Path
) -> None:
    routing = on_openai(openai_srv)
    t = hitl(**routing)
    side = tmp_path / "side.txt"
    run_id = t.start("triage_then_ask", {"side": str(side)})
    env = {
        **ENV,
        "TETHER_MODEL_BACKENDS": json.dumps(routing["model_backends"]),
        "TETHER_MODEL_ROUTES": json.dumps(routing["model_routes"]),
    }
    data = tmp_path / ".tether"
    # the first worker makes two model calls and one tool call, then parks on the approval
    run_worker_until(data, lambda: t.status(run_id).status is RunStatus.WAITING, env)
    assert len(openai_srv.requests) == 2 and side.read_text() == "T-1\n"
    time.sleep(1.5)  # the worker has been gone longer than its lease (1 s)
    (request,) = t.approvals(run_id=run_id, state="pending")
    assert request.action.args["to"] == "customer of T-1"
    t.decide(request.id, "approved", identity=OPS)
    run_worker_until(data, lambda: t.status(run_id).status is RunStatus.COMPLETED, env)
    out = t.output(t.status(run_id))
    assert out["verdict"] == "approved" and out["by"] == "alice"
    assert len(openai_srv.requests) == 2  # both model calls came from the journal
    assert side.read_text() == "T-1\n"  # and so did the tool's result
    assert len(t.approvals(run_id=run_id)) == 1


def test_an_approved_call_killed_mid_dispatch_is_not_sent_twice_nor_approved_again(
    hitl: Callable[..., Tether], tmp_path: Path
) -> None:
    t = hitl()
    outbox = tmp_path / "outbox"
    run_id = t.start("gated_mail", {"outbox": str(outbox), "to": ["a@x.com"], "then_wait": 30})
    stop = threading.Event()
    t.run(run_id, stop=stop, on_wait=lambda _: stop.set())  # parked on the approval
    (request,) = t.approvals(run_id=run_id, state="pending")
    t.decide(request.id, "approved", identity=OPS)
    data = tmp_path / ".tether"
    # the approved call reaches the mail server; the worker dies before it answers
    kill_worker_when(data, outbox.exists, ENV)
    run_worker_until(data, lambda: t.status(run_id).status is RunStatus.NEEDS_ATTENTION, ENV)
    assert outbox.read_text() == "a@x.com\thello\n"  # an unsafe call is not re-sent blindly
    stored = t.approval(request.id)
    consumed = [h for h in stored.history if h.event == "consumed"]
    assert len(consumed) == 1 and stored.consumed_by is not None
    assert len(t.approvals(run_id=run_id)) == 1  # the resumed call asked no second approval
    step = stored.consumed_by.split("/", 1)[1]
    row = t.foundations.tools.lookup(run_id, step)  # where the approval was spent: the intent
    assert row is not None and row.approval == request.id and row.status == "started"
    t.resolve(run_id, step, result="sent to a@x.com")
    run_worker_until(data, lambda: t.status(run_id).status is RunStatus.COMPLETED, ENV)
    assert t.output(t.status(run_id)) == {"results": ["sent to a@x.com"]}
    assert outbox.read_text() == "a@x.com\thello\n"
    assert [h.event for h in t.approval(request.id).history].count("consumed") == 1
