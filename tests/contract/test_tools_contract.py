"""I1 contract: the replay rules hold on every tool_call_results backend, and every lane backend
(plain and bubblewrap on this host; daytona, e2b, opencomputer and tensorlake against a local
server speaking each one's API) runs tools the same way with the same limits, for each persistence
class it runs; both lists are the installed entry points (`tether.tool_results`, `tether.tools`).

The runner tests stand in for a crashed worker by writing the intent row the way a worker
does just before dispatch, then calling again as a resumed worker would.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.contract.backends import environment, installed
from tests.fakes import daytona_server as daytona
from tests.fakes import e2b_server as e2b
from tests.fakes import opencomputer_server as opencomputer
from tests.fakes import tensorlake_server as tensorlake
from tests.fakes.daytona_server import DaytonaServer
from tests.fakes.e2b_server import E2BServer
from tests.fakes.opencomputer_server import OpenComputerServer
from tests.fakes.tensorlake_server import TensorlakeServer
from tests.tools import sample_tools as t
from tether.errors import (
    ApprovalSpent,
    NonDeterminismError,
    RunStateError,
    ToolArgumentError,
    ToolFailed,
    UnsafeReplayError,
)
from tether.foundation.blobs.files import FileBlobStore
from tether.foundation.loader import open_backend
from tether.foundation.tools.contract import (
    LaneBackend,
    PersistenceClass,
    ToolDef,
    ToolInvocation,
)
from tether.foundation.tools.local import LocalLanes
from tether.foundation.tools.memory import MemoryToolResults
from tether.foundation.tools.results import CallStatus, Resolution, ToolCallRecord, ToolCallStore
from tether.foundation.tools.runner import ToolOutcome, ToolRunner, args_hash, idempotency_key

# lanes run against a local server speaking the vendor's API: (server, key, variable prefix, the
# variables after it naming the server's URL: E2B's sandboxes have one of their own)
SERVED_LANES: dict[str, tuple[Callable[[], Any], str, str, tuple[str, ...]]] = {
    "daytona": (DaytonaServer, daytona.KEY, "DAYTONA", ("API_URL",)),
    "e2b": (E2BServer, e2b.KEY, "E2B", ("API_URL", "SANDBOX_URL")),
    "opencomputer": (OpenComputerServer, opencomputer.KEY, "OPENCOMPUTER", ("API_URL",)),
    "tensorlake": (TensorlakeServer, tensorlake.KEY, "TENSORLAKE", ("API_URL",)),
}
# lanes whose session is a directory only (a process per call), not also a live process
DISK_SESSIONS = {"daytona", "opencomputer", "tensorlake"}
# the persistence classes of lane backends that do not run all three
OFFERS = {
    "daytona": {PersistenceClass.PERSISTENT_SESSION, PersistenceClass.PERSISTENT_WORKSPACE},
    "e2b": {PersistenceClass.EPHEMERAL},
}

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=installed("tool_results"))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ToolCallStore]:
    with environment(request.param, "tools", tmp_path) as (settings, options):
        made = open_backend("tool_results", request.param, ToolCallStore, settings, **options)
        yield made
        made.close()


@pytest.fixture(params=installed("tools"))
def lanes(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LaneBackend]:
    with environment(request.param, "tools", tmp_path) as (settings, options):
        if request.param in SERVED_LANES:  # the vendor's API, served here (tests/fakes)
            serve, key, prefix, urls = SERVED_LANES[request.param]
            server = serve()
            with pytest.MonkeyPatch.context() as env:
                env.setenv(f"{prefix}_API_KEY", key)
                for url in urls:
                    env.setenv(f"{prefix}_{url}", server.url)
                yield open_backend("tools", request.param, LaneBackend, settings, **options)
            server.close()
            return
        yield open_backend("tools", request.param, LaneBackend, settings, **options)


@pytest.fixture
def runner(store: ToolCallStore, tmp_path: Path) -> Iterator[ToolRunner]:
    made = ToolRunner(store, LocalLanes(tmp_path / "data"), FileBlobStore(tmp_path / "blobs"))
    yield made


class OfferedRunner(ToolRunner):
    """Skips, saying so, a test calling a tool whose persistence class its lanes do not run
    (they refuse it with a ConfigurationError, tested beside each backend)."""

    def __init__(self, name: str, lanes: LaneBackend, blobs: FileBlobStore) -> None:
        super().__init__(MemoryToolResults(), lanes, blobs)
        self._name = name

    async def call(self, invocation: ToolInvocation) -> ToolOutcome:
        persistence = invocation.tool.persistence
        if persistence not in OFFERS.get(self._name, set(PersistenceClass)):
            pytest.skip(f"{self._name} runs no {persistence.value} tools")
        return await super().call(invocation)


@pytest.fixture
def lane_runner(lanes: LaneBackend, tmp_path: Path, request: pytest.FixtureRequest) -> ToolRunner:
    name = request.node.callspec.params["lanes"]
    return OfferedRunner(name, lanes, FileBlobStore(tmp_path / "blobs"))


def call(tool: ToolDef, step: str = "1", run: str = "run-1", **args: object) -> ToolInvocation:
    return ToolInvocation(run_id=run, step_id=step, attempt=1, tool=tool, args=dict(args))


def crash_after_intent(store: ToolCallStore, inv: ToolInvocation) -> ToolCallRecord:
    """What a worker leaves behind when it dies after committing the intent."""
    key = idempotency_key(inv.run_id, inv.step_id) if inv.tool.takes_key else None
    row, created = store.begin(ToolCallRecord(
        run_id=inv.run_id, step_id=inv.step_id, attempt=inv.attempt, tool=inv.tool.name,
        args=inv.args, args_hash=args_hash(inv.args), idempotency_key=key,
        status=CallStatus.STARTED, started_at=time.time(),
    ))  # fmt: skip
    assert created
    return row


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


# --- tool_call_results and the replay rules, on every store ----------------------------


async def test_finished_call_returns_stored_result_without_calling_tool(
    runner: ToolRunner, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox"
    inv = call(t.send_email, outbox=str(outbox), to="ann@example.com", body="hi")
    first = await runner.call(inv)
    again = await runner.call(inv)
    assert (first.value, first.replayed) == ("sent to ann@example.com", False)
    assert (again.value, again.replayed) == ("sent to ann@example.com", True)
    assert lines(outbox) == ["ann@example.com\thi"]
    row = runner.lookup("run-1", "1")
    assert row is not None and row.status is CallStatus.FINISHED
    assert row.args_hash == args_hash(inv.args) and row.finished_at is not None


async def test_unsafe_tool_started_without_result_raises_unsafe_replay(
    runner: ToolRunner, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox"
    inv = call(t.send_email, outbox=str(outbox), to="ann@example.com", body="hi")
    intent = crash_after_intent(runner.store, inv)
    with pytest.raises(UnsafeReplayError) as raised:
        await runner.call(inv)
    assert raised.value.evidence["args"] == inv.args
    assert raised.value.evidence["started_at"] == pytest.approx(intent.started_at)
    assert raised.value.attempt == 1 and "tether resolve run-1 --step 1" in str(raised.value)
    assert lines(outbox) == []


async def test_pure_tool_started_without_result_runs_again(runner: ToolRunner) -> None:
    inv = call(t.add, a=2, b=3)
    crash_after_intent(runner.store, inv)
    outcome = await runner.call(inv)
    assert (outcome.value, outcome.replayed, outcome.attempt) == (5, False, 2)


async def test_idempotent_tool_rerun_after_interruption_passes_the_same_key(
    runner: ToolRunner, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger"
    inv = call(t.charge, ledger=str(ledger), amount=10)
    interrupted = crash_after_intent(runner.store, inv)
    outcome = await runner.call(inv)
    assert outcome.idempotency_key == interrupted.idempotency_key == outcome.value
    assert lines(ledger) == [f"{interrupted.idempotency_key}\t10"]


async def test_a_call_whose_arguments_differ_from_its_intent_row_is_non_deterministic(
    runner: ToolRunner, tmp_path: Path
) -> None:
    """A resumed run that reaches a recorded call with other arguments (a key minted anew,
    code changed under a run) neither gets the old result nor sends the new arguments."""
    outbox = tmp_path / "outbox"
    crash_after_intent(runner.store, call(t.send_email, outbox=str(outbox), to="a@x.org", body="1"))
    with pytest.raises(NonDeterminismError) as raised:
        await runner.call(call(t.send_email, outbox=str(outbox), to="b@x.org", body="1"))
    assert raised.value.step_id == "1" and "a@x.org" in str(raised.value)
    assert lines(outbox) == []


async def test_unsafe_tool_that_raises_fails_and_is_never_retried(
    runner: ToolRunner, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox"
    inv = call(t.send_then_fail, outbox=str(outbox))
    for _ in range(2):
        with pytest.raises(ToolFailed, match="smtp said no"):
            await runner.call(inv)
    assert lines(outbox) == ["attempt"]
    row = runner.lookup("run-1", "1")
    assert row is not None and row.status is CallStatus.FAILED and not row.interrupted


async def test_unsafe_tool_that_times_out_is_treated_as_interrupted(
    runner: ToolRunner, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox"
    inv = call(t.send_slowly, outbox=str(outbox))
    with pytest.raises(UnsafeReplayError, match="wall timeout"):
        await runner.call(inv)
    with pytest.raises(UnsafeReplayError, match="no result"):
        await runner.call(inv)
    assert lines(outbox) == ["started"]
    row = runner.lookup("run-1", "1")
    assert row is not None and row.status is CallStatus.STARTED


async def test_resolve_with_result_answers_the_interrupted_call(
    runner: ToolRunner, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox"
    inv = call(t.send_email, outbox=str(outbox), to="a", body="b")
    crash_after_intent(runner.store, inv)
    runner.resolve("run-1", "1", Resolution.RESULT, "sent to a")
    outcome = await runner.call(inv)
    assert (outcome.value, outcome.replayed) == ("sent to a", True)
    assert lines(outbox) == []


async def test_resolve_skip_finishes_the_call_with_none(runner: ToolRunner, tmp_path: Path) -> None:
    inv = call(t.send_email, outbox=str(tmp_path / "outbox"), to="a", body="b")
    crash_after_intent(runner.store, inv)
    row = runner.resolve("run-1", "1", "skip")
    assert (row.status, row.resolution) == (CallStatus.FINISHED, Resolution.SKIP)
    assert (await runner.call(inv)).value is None


async def test_resolve_rerun_sends_the_call_once_more(runner: ToolRunner, tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    inv = call(t.send_email, outbox=str(outbox), to="a", body="b")
    crash_after_intent(runner.store, inv)
    runner.resolve("run-1", "1", Resolution.RERUN)
    outcome = await runner.call(inv)
    assert (outcome.replayed, outcome.attempt) == (False, 2)
    assert lines(outbox) == ["a\tb"]
    # a call finished since is not rerun by a later decision: its record stands
    again = runner.resolve("run-1", "1", Resolution.RERUN)
    assert (again.status, again.attempt) == (CallStatus.FINISHED, 2)
    assert (await runner.call(inv)).replayed and lines(outbox) == ["a\tb"]


def test_resolve_without_a_call_says_so(runner: ToolRunner) -> None:
    with pytest.raises(RunStateError, match="no tool call at step 9"):
        runner.resolve("run-1", "9", Resolution.SKIP)


async def test_bad_arguments_rejected_before_tool_runs(runner: ToolRunner, tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    inv = call(t.send_email, outbox=str(outbox), to=["not", "a", "string"], surprise=1)
    with pytest.raises(ToolArgumentError) as raised:
        await runner.call(inv)
    message = str(raised.value)
    assert "to:" in message and "body:" in message and "surprise:" in message
    assert runner.lookup("run-1", "1") is None and lines(outbox) == []


async def test_result_over_the_inline_limit_is_stored_by_reference(
    store: ToolCallStore, tmp_path: Path
) -> None:
    blobs = FileBlobStore(tmp_path / "blobs")
    runner = ToolRunner(store, LocalLanes(tmp_path / "data"), blobs, inline_limit=1000)
    outcome = await runner.call(call(t.big_result, size=5000))
    row = runner.lookup("run-1", "1")
    assert row is not None and row.result is None and row.result_ref == outcome.result_ref
    assert outcome.result_ref is not None and blobs.get(outcome.result_ref) == outcome.json.encode()
    again = await runner.call(call(t.big_result, size=5000))
    assert again.replayed and again.value == "x" * 5000


def test_one_live_row_per_step_and_attempts_after_failures(store: ToolCallStore) -> None:
    intent = ToolCallRecord(
        run_id="r", step_id="s", attempt=1, tool="add", args={}, args_hash="h",
        idempotency_key=None, status=CallStatus.STARTED, started_at=1.0,
    )  # fmt: skip
    first, created = store.begin(intent)
    assert created and first.attempt == 1
    live, created = store.begin(intent.model_copy(update={"started_at": 2.0}))
    assert not created and live.started_at == 1.0
    failure = {"error_type": "E", "error": "x", "interrupted": False, "finished_at": 3.0}
    assert store.fail("r", "s", 1, **failure)  # type: ignore[arg-type]
    assert not store.fail("r", "s", 1, **failure)  # type: ignore[arg-type]
    second, created = store.begin(intent)
    assert created and second.attempt == 2
    store.finish("r", "s", 2, result="5", result_ref=None, finished_at=4.0)
    latest = store.lookup("r", "s")
    assert latest is not None and (latest.attempt, latest.result) == (2, "5")
    assert store.lookup("r", "other") is None


def test_an_approval_is_spent_on_the_intent_row_of_one_call(store: ToolCallStore) -> None:
    intent = ToolCallRecord(
        run_id="r", step_id="3", attempt=1, tool="send", args={"to": "a"}, args_hash="h",
        idempotency_key=None, status=CallStatus.STARTED, started_at=1.0, approval="r:2",
    )  # fmt: skip
    first, created = store.begin(intent)
    assert created and first.approval == "r:2"
    again, created = store.begin(intent)  # the same call resumed: its row, approval and all
    assert not created and again.approval == "r:2"
    failure = {"error_type": "E", "error": "x", "interrupted": True, "finished_at": 2.0}
    assert store.fail("r", "3", 1, **failure)  # type: ignore[arg-type]
    rerun, created = store.begin(intent)  # the same call run again may use it again
    assert created and (rerun.attempt, rerun.approval) == (2, "r:2")
    for other in ({"step_id": "5"}, {"run_id": "r2"}):  # same arguments, another call
        with pytest.raises(ApprovalSpent, match="already released the call r/3"):
            store.begin(intent.model_copy(update=other))
    assert store.lookup("r", "5") is None and store.lookup("r2", "3") is None
    unapproved, created = store.begin(intent.model_copy(update={"step_id": "6", "approval": None}))
    assert created and unapproved.approval is None


async def test_a_call_bringing_a_spent_approval_does_not_run(
    runner: ToolRunner, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox"
    args = {"outbox": str(outbox), "to": "a", "body": "hi"}
    first = ToolInvocation("run-1", "3", 1, t.send_email, args, approval="q")
    assert (await runner.call(first)).value == "sent to a"
    replay = await runner.call(first)
    assert replay.replayed and lines(outbox) == ["a\thi"]
    with pytest.raises(ApprovalSpent):
        await runner.call(ToolInvocation("run-1", "4", 1, t.send_email, args, approval="q"))
    assert lines(outbox) == ["a\thi"] and runner.lookup("run-1", "4") is None


# --- lanes: the same behaviour plain and under bubblewrap -------------------------------


async def test_tool_runs_sync_and_async_with_typed_results(lane_runner: ToolRunner) -> None:
    assert (await lane_runner.call(call(t.add, a=2))).value == 3
    greeting = await lane_runner.call(call(t.greet, "2", name="ann"))
    assert t.greet.decode_result(greeting.json) == t.Greeting(text="hello ann!", length=10)


async def test_a_result_over_64_kib_comes_back_whole(lane_runner: ToolRunner) -> None:
    """An answer is one line, and asyncio reads at most 64 KiB of one unless told more."""
    assert (await lane_runner.call(call(t.big_result, size=300_000))).value == "x" * 300_000


async def test_tool_printing_to_stdout_does_not_corrupt_the_answer(
    lane_runner: ToolRunner,
) -> None:
    assert (await lane_runner.call(call(t.noisy))).value == 7


async def test_ephemeral_lane_kills_tool_over_memory_limit(lane_runner: ToolRunner) -> None:
    with pytest.raises(ToolFailed, match="memory limit of 200 MB") as raised:
        await lane_runner.call(call(t.allocate, mb=400))
    assert raised.value.limit == "memory"
    assert (await lane_runner.call(call(t.allocate, "2", mb=10))).value == 10 * 1024 * 1024


async def test_ephemeral_lane_kills_tool_over_cpu_limit(lane_runner: ToolRunner) -> None:
    with pytest.raises(ToolFailed, match="CPU limit of 1 s") as raised:
        await lane_runner.call(call(t.spin))
    assert raised.value.limit == "cpu"


async def test_ephemeral_lane_kills_tool_past_its_wall_timeout(lane_runner: ToolRunner) -> None:
    with pytest.raises(ToolFailed, match=r"wall timeout of 0\.5 s") as raised:
        await lane_runner.call(call(t.sleep_forever))
    assert raised.value.limit == "timeout"


async def test_ephemeral_tool_gets_a_throwaway_directory(lane_runner: ToolRunner) -> None:
    first = (await lane_runner.call(call(t.where_am_i))).value
    second = (await lane_runner.call(call(t.where_am_i, "2"))).value
    assert first != second and not Path(first).exists()


async def test_session_tool_keeps_state_within_a_run_and_restarts_after_park(
    lane_runner: ToolRunner, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A session's state is its directory on every lane; a lane that keeps a process for the
    session (not one per call) keeps its memory too, until the run parks."""
    in_memory = request.node.callspec.params["lanes"] not in DISK_SESSIONS
    one = (await lane_runner.call(call(t.session_count, "1", note="a"))).value
    two = (await lane_runner.call(call(t.session_count, "2", note="b"))).value
    assert (one["in_memory"], two["in_memory"], two["on_disk"]) == (1, 2 if in_memory else 1, 2)
    other_run = (await lane_runner.call(call(t.session_count, "1", run="run-2", note="c"))).value
    assert (other_run["in_memory"], other_run["on_disk"]) == (1, 1)
    await lane_runner.run_parked("run-1")
    three = (await lane_runner.call(call(t.session_count, "3", note="c"))).value
    assert (three["in_memory"], three["on_disk"]) == (1, 3)
    await lane_runner.run_ended("run-1")
    assert not (tmp_path / "data" / "tools" / "sessions" / "run-1").exists()
    await lane_runner.close()


async def test_workspace_tool_keeps_its_directory_across_runs(lane_runner: ToolRunner) -> None:
    await lane_runner.call(call(t.workspace_append, run="run-1", note="first"))
    await lane_runner.run_ended("run-1")
    seen = (await lane_runner.call(call(t.workspace_append, run="run-2", note="second"))).value
    assert seen == ["first", "second"]


def _listening() -> socket.socket:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    return server


async def test_tool_with_network_declared_can_connect(lane_runner: ToolRunner) -> None:
    with _listening() as server:
        port = server.getsockname()[1]
        inv = call(t.can_connect_with_network, host="127.0.0.1", port=port)
        assert (await lane_runner.call(inv)).value is True


def test_copy_calls_gives_a_fork_every_attempt_of_the_kept_steps(store: ToolCallStore) -> None:
    def begun(step: str, run: str = "old") -> ToolCallRecord:
        return crash_after_intent(store, call(t.add, step=step, run=run, a=1))

    first = begun("1")
    store.fail("old", "1", first.attempt, error_type="X", error="x", interrupted=True,
               finished_at=time.time())  # fmt: skip
    second = begun("1")
    store.finish("old", "1", second.attempt, result="2", result_ref=None, finished_at=time.time())
    begun("2")
    assert store.copy_calls("old", "fork", ["1"]) == 2
    copied = store.lookup("fork", "1")
    assert copied == store.lookup("old", "1").model_copy(update={"run_id": "fork"})  # type: ignore[union-attr]
    assert store.lookup("fork", "2") is None
    assert store.copy_calls("old", "other", []) == 0
