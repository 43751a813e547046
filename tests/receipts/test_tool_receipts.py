"""I1 through the runtime: an unsafe side effect fires once whatever crashes; a person decides
what an interrupted one did."""

from __future__ import annotations

import json
import signal
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.workers import kill_worker_when, run_worker_until, start_worker, wait_for
from tether import RunStatus, Tether
from tether.errors import ToolArgumentError


def sent(outbox: Path) -> list[str]:
    return outbox.read_text().splitlines() if outbox.exists() else []


def _interrupted_mail(t: Tether, tmp_path: Path, outbox: Path) -> str:
    """A mailer run whose worker was killed after the mail server had the email but before
    it answered, resumed by a second worker into needs_attention. Returns the run's id."""
    run_id = t.start("mailer", {"outbox": str(outbox), "then_wait": 30})
    env = {"TETHER_WORKFLOWS": json.dumps(["tests.receipts.agents"])}
    kill_worker_when(tmp_path / ".tether", lambda: len(sent(outbox)) == 1, env)
    run_worker_until(
        tmp_path / ".tether", lambda: t.status(run_id).status is RunStatus.NEEDS_ATTENTION, env
    )
    return run_id


def test_send_email_fires_once_after_kill_and_resume(
    agent_tether: Callable[..., Tether],
    tmp_path: Path,
) -> None:
    t = agent_tether()
    outbox = tmp_path / "outbox.txt"
    run_id = _interrupted_mail(t, tmp_path, outbox)
    run = t.status(run_id)
    assert run.failed_step == "1" and "UnsafeReplayError" in (run.error or "")
    assert "tether resolve" in (run.error or "")
    assert len(sent(outbox)) == 1  # not sent a second time by the resume
    t.resolve(run_id, "1", result="sent to ana@example.com (confirmed by hand)")
    done = t.run(run_id)
    assert done.status is RunStatus.COMPLETED
    assert t.output(done) == {"result": "sent to ana@example.com (confirmed by hand)"}
    assert len(sent(outbox)) == 1


def test_an_interrupted_email_that_finished_after_all_is_not_resent_on_rerun(
    agent_tether: Callable[..., Tether],
    tmp_path: Path,
) -> None:
    """The execution thought dead (its lease had lapsed) finishes the call after another
    worker parked the run for a person; the person, seeing no answer yet, says rerun. The
    recorded result stands, the run resumes with it, and the email is not sent again."""
    t = agent_tether()
    outbox = tmp_path / "outbox.txt"
    run_id = _interrupted_mail(t, tmp_path, outbox)
    runner = t.foundations.tools
    started = runner.lookup(run_id, "1")
    assert started is not None
    runner.store.finish(
        run_id, "1", started.attempt, result='"sent to ana@example.com (late)"', result_ref=None,
        finished_at=time.time(),
    )  # fmt: skip
    t.resolve(run_id, "1", rerun=True)
    done = t.run(run_id)
    assert done.status is RunStatus.COMPLETED
    assert t.output(done) == {"result": "sent to ana@example.com (late)"}
    assert len(sent(outbox)) == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the tie is Linux's prctl")
def test_a_killed_workers_tool_process_dies_with_it_and_sends_nothing_later(
    agent_tether: Callable[..., Tether],
    tmp_path: Path,
) -> None:
    """Tool processes lead their own session, so a SIGKILL of the worker does not reach them;
    left alive, this one would send its email after whoever resumes the run had looked."""
    t = agent_tether()
    started, outbox = tmp_path / "started", tmp_path / "outbox.txt"
    t.start("slow_mailer", {"started": str(started), "outbox": str(outbox), "delay": 3.0})
    env = {"TETHER_WORKFLOWS": json.dumps(["tests.receipts.agents"])}
    kill_worker_when(
        tmp_path / ".tether", lambda: started.exists() and started.read_text() != "", env
    )
    tool_pid = int(started.read_text())
    wait_for(lambda: not _running(tool_pid), timeout=2.0)  # not the 3 s the tool would take
    assert sent(outbox) == []


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has stopped; it only waits to be reaped


def _wait_for_tool(started: Path) -> int:
    wait_for(lambda: started.exists() and started.read_text() != "")
    return int(started.read_text())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the template is Linux's")
def test_a_frozen_workers_tool_process_is_gone_before_another_worker_takes_the_run(
    agent_tether: Callable[..., Tether],
    tmp_path: Path,
) -> None:
    """A worker stopped (SIGSTOP: a stall, a long pause) mid-call can neither finish nor stop
    its call, and its lease lapses. The call stops itself before the lease expires, so the
    worker that takes the run over finds nothing still running that could send the email,
    and the frozen worker, woken, sends nothing either: its lease is gone."""
    t = agent_tether()
    started, outbox = tmp_path / "started", tmp_path / "outbox.txt"
    run_id = t.start("slow_mailer", {"started": str(started), "outbox": str(outbox), "delay": 6})
    env = {"TETHER_WORKFLOWS": json.dumps(["tests.receipts.agents"])}
    frozen = start_worker(tmp_path / ".tether", env)
    try:
        tool_pid = _wait_for_tool(started)
        frozen.send_signal(signal.SIGSTOP)
        first_owner = t.status(run_id).lease_owner
        taker = start_worker(tmp_path / ".tether", env)
        try:
            died_at = None
            while True:  # which comes first: the tool's end, or another worker's claim
                if died_at is None and not _running(tool_pid):
                    died_at = time.monotonic()
                run = t.status(run_id)
                if run.lease_owner not in (None, first_owner) or run.status in (
                    RunStatus.NEEDS_ATTENTION, RunStatus.COMPLETED,
                ):  # fmt: skip
                    break
                time.sleep(0.005)
            assert died_at is not None, "the tool was still running when the run was taken"
            wait_for(lambda: t.status(run_id).status is RunStatus.NEEDS_ATTENTION)
        finally:
            taker.terminate()
            taker.wait(10)
        frozen.send_signal(signal.SIGCONT)
        time.sleep(1.5)  # the woken worker finds its lease taken and its call stopped
        assert t.status(run_id).status is RunStatus.NEEDS_ATTENTION
        assert "UnsafeReplayError" in (t.status(run_id).error or "")
        assert sent(outbox) == []  # at most once: here never, the call was stopped first
    finally:
        frozen.kill()
        frozen.wait(10)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the template is Linux's")
def test_a_worker_that_finds_its_lease_lost_stops_the_runs_tool_at_once(
    agent_tether: Callable[..., Tether],
    tmp_path: Path,
) -> None:
    """Another worker holds the run now (its token replaced, as a claim after expiry does):
    the next heartbeat finds the lease lost and kills the call, well before the tool's own
    6 s, so the email it was about to send never goes out."""
    t = agent_tether()
    started, outbox = tmp_path / "started", tmp_path / "outbox.txt"
    run_id = t.start("slow_mailer", {"started": str(started), "outbox": str(outbox), "delay": 6})
    env = {"TETHER_WORKFLOWS": json.dumps(["tests.receipts.agents"])}
    worker = start_worker(tmp_path / ".tether", env)
    try:
        tool_pid = _wait_for_tool(started)
        with sqlite3.connect(tmp_path / ".tether" / "tether.db") as db:
            db.execute(
                "UPDATE runs SET lease_token = 'taken', lease_owner = 'another' WHERE id = ?",
                (run_id,),
            )
        wait_for(lambda: not _running(tool_pid), timeout=1.5)  # a heartbeat is 1/3 s apart
        time.sleep(0.5)
        assert sent(outbox) == []
        assert t.status(run_id).lease_owner == "another"  # the worker wrote nothing after
    finally:
        worker.terminate()
        worker.wait(10)


def test_send_email_is_not_resent_when_the_worker_died_after_it_finished(
    agent_tether: Callable[..., Tether],
    tmp_path: Path,
) -> None:
    """The call finished but the journal never heard (the worker died in between): the
    tool_call_results row answers the replay, and the tool is not called."""
    t = agent_tether()
    outbox = tmp_path / "outbox.txt"
    first = t.run(t.start("mailer", {"outbox": str(outbox)}))
    assert first.status is RunStatus.COMPLETED
    # Lose the journal entry, as a crash between the tool's commit and the journal's would.
    again = t.start("mailer", {"outbox": str(outbox)})
    runner = t.foundations.tools
    record = runner.lookup(first.id, "1")
    assert record is not None
    runner.store.begin(record.model_copy(update={"run_id": again}))
    assert t.run(again).status is RunStatus.COMPLETED
    assert len(sent(outbox)) == 1


def test_bad_tool_arguments_fail_the_step_before_anything_runs(
    agent_tether: Callable[..., Tether],
    tmp_path: Path,
) -> None:
    t = agent_tether()
    marker = tmp_path / "ran.txt"
    run = t.run(t.start("bad_args", {"marker": str(marker)}))
    assert run.status is RunStatus.FAILED
    error = json.loads(run.error or "{}")
    assert error["type"] == ToolArgumentError.__name__ and "key" in error["message"]
    assert not marker.exists()


def test_inspect_of_a_parked_run_lists_the_interrupted_tool_step(
    agent_tether: Callable[..., Tether],
    tmp_path: Path,
) -> None:
    from rich.console import Console

    from tether.cli.views import print_inspect

    t = agent_tether()
    run_id = _interrupted_mail(t, tmp_path, tmp_path / "outbox.txt")
    view = t.inspect(run_id)
    assert view.interrupted is not None and view.interrupted.tool == "send_mail"
    console = Console(record=True, width=240)
    print_inspect(t, view, console)
    (row,) = [line for line in console.export_text().splitlines() if " interrupted " in line]
    assert "send_mail" in row and f"tether resolve {run_id} --step 1" in row
