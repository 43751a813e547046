"""The receipt: a LangGraph graph killed with SIGKILL while its tool node is sending an email,
then resumed from its checkpoint. LangGraph re-runs an unfinished node, so on its own saver and
ToolNode the email goes out twice; through TetherSaver and tether_tool_node the re-run meets
the call's intent in tool_call_results and refuses to send again, with the evidence a person
needs, and after `resolve` the graph finishes with the one email sent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integrations.graphs import build, graph_send_email
from tests.workers import ROOT, wait_for
from tether import Settings, Tether
from tether.integrations.langgraph import TetherSaver, resolve_tool_call, tether_tool_node

pytestmark = pytest.mark.slow


def graph_process(system: str, data: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integrations.run_graph", system, str(data), "t1", *args],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def kill_mid_send_then_resume(system: str, data: Path) -> subprocess.CompletedProcess[bytes]:
    outbox, hang = data / "outbox", data / "hang"
    hang.touch()  # the mail server does not answer: the tool hangs after sending
    first = graph_process(system, data)
    try:
        wait_for(lambda: outbox.exists() and outbox.read_text().count("\n") == 1)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        first.kill()
    hang.unlink()
    resumed = graph_process(system, data, "--resume")
    _, err = resumed.communicate(timeout=60)
    return subprocess.CompletedProcess(resumed.args, resumed.returncode, b"", err)


def test_langgraphs_own_saver_sends_the_email_twice_after_a_kill(tmp_path: Path) -> None:
    resumed = kill_mid_send_then_resume("langgraph", tmp_path)
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert (tmp_path / "outbox").read_text().count("ana@example.com") == 2


def test_tether_sends_the_email_once_after_a_kill_and_finishes_once_resolved(
    tmp_path: Path,
) -> None:
    resumed = kill_mid_send_then_resume("tether", tmp_path)
    assert resumed.returncode == 3, resumed.stderr.decode()
    evidence = json.loads(resumed.stderr.decode().strip().splitlines()[-1])
    assert evidence["tool"] == "graph_send_email" and evidence["run_id"] == "t1"
    assert evidence["args"]["to"] == "ana@example.com"
    assert (tmp_path / "outbox").read_text().count("ana@example.com") == 1

    # A person looks at the mail server, sees it went out, and records the result.
    tether = Tether(Settings(data_dir=tmp_path / ".tether", checkpoint="sqlite", trace="none"))
    try:
        resolve_tool_call(tether, "t1", evidence["step_id"], result="sent (resolved)")
        graph = build(
            TetherSaver(tether, graph="mailer@1.0.0"), tether_tool_node([graph_send_email], tether)
        )
        out = graph.invoke(None, {"configurable": {"thread_id": "t1"}})
    finally:
        tether.close()
    assert [m.content for m in out["messages"]][-2:] == ["sent (resolved)", "done"]
    assert (tmp_path / "outbox").read_text().count("ana@example.com") == 1
