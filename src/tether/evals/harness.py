"""Running golden cases through a workflow, in process, under a candidate's routes.

Each case gets its own `Tether` over memory stores in a throwaway directory: its tool calls go
through the ToolRunner to `FixtureLanes` (no sandbox, no side effect), its waits get the
answers its recording holds (`AnsweringCheckpointer`), its model calls through
I12 with the candidate's routes, recorded on the way (which route answered each task class and
a hash of the messages it was sent: the prompt as the model saw it). Cases run concurrently in
threads, at most `concurrency` at once; one that fails, or does not finish in `timeout`
seconds, is an errored case, never a skipped one.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tether.client import Tether
from tether.errors import TetherError
from tether.evals.answers import AnsweringCheckpointer
from tether.evals.candidate import eval_settings
from tether.evals.fixtures import FixtureLanes
from tether.foundation.blobs.files import FileBlobStore
from tether.foundation.checkpoint.contract import RunStatus
from tether.foundation.evals.contract import EvalConfig, GoldenCase, digest
from tether.foundation.models.contract import ModelRequest, RoutedResponse, TokenSink
from tether.foundation.models.router import BeforeAttempt, ModelRouter
from tether.foundation.tools.memory import MemoryToolResults
from tether.foundation.tools.runner import ToolRunner
from tether.runtime.foundations import Foundations
from tether.runtime.registry import WorkflowDef
from tether.settings import Settings


@dataclass(frozen=True)
class CaseRun:
    """What one case's run produced: its output (JSON data) or the error that ended it."""

    case: GoldenCase
    output: Any
    error: str | None
    config: EvalConfig


class _PromptLog:
    """Per task class: the route that answered and the digest of each request's messages."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.routes: dict[str, set[str]] = defaultdict(set)
        self.prompts: dict[str, list[str]] = defaultdict(list)

    def add(self, request: ModelRequest, routed: RoutedResponse) -> None:
        d = routed.decision
        seen = digest([m.model_dump(mode="json") for m in request.messages])
        with self._lock:
            self.routes[request.task_class].add(f"{d.backend}/{d.model}")
            self.prompts[request.task_class].append(seen)

    def config(self, revision: str) -> EvalConfig:
        with self._lock:
            return EvalConfig(
                revision=revision,
                routes={task: sorted(r) for task, r in sorted(self.routes.items())},
                # sorted: gather branches may call in any order; the set of prompts is the thing
                prompts={task: digest(sorted(p)) for task, p in sorted(self.prompts.items())},
            )


class _RecordingRouter(ModelRouter):
    log: _PromptLog

    async def complete(
        self,
        request: ModelRequest,
        *,
        before_attempt: BeforeAttempt | None = None,
        tokens: TokenSink | None = None,
    ) -> RoutedResponse:
        routed = await super().complete(request, before_attempt=before_attempt, tokens=tokens)
        self.log.add(request, routed)
        return routed


class _EvalFoundations(Foundations):
    """Production foundations but two: tools from fixtures, models recorded."""

    def __init__(self, settings: Settings, lanes: FixtureLanes, log: _PromptLog) -> None:
        blobs = FileBlobStore(settings.data_path / "blobs")
        super().__init__(settings, blobs)
        self._lanes, self._log = lanes, log

    @property
    def tools(self) -> ToolRunner:
        runner: ToolRunner = self._get(
            "tools", lambda: ToolRunner(MemoryToolResults(), self._lanes, self.blobs)
        )
        return runner

    @property
    def models(self) -> ModelRouter:
        def build() -> ModelRouter:
            router = _RecordingRouter.from_settings(self.settings)
            assert isinstance(router, _RecordingRouter)  # from_settings builds `cls`
            router.log = self._log
            return router

        router: ModelRouter = self._get("models", build)
        return router


def revision() -> str:
    """The code revision the eval runs: git's HEAD where there is one."""
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=10
        )
    except OSError:
        return "unknown"
    return found.stdout.strip() if found.returncode == 0 else "unknown"


def _error(t: Tether, run_id: str, timeout: float) -> str | None:
    run = t.status(run_id)
    if run.status is RunStatus.COMPLETED:
        return None
    if run.status is RunStatus.FAILED:
        detail = json.loads(run.error or "{}")
        return f"{detail.get('type', 'Error')}: {detail.get('message', '')}"
    if run.status in (RunStatus.WAITING, RunStatus.SLEEPING, RunStatus.RUNNING):
        return (
            f"the run is still {run.status.value} after {timeout:g}s: give the case the events "
            "its waits need, shorter sleeps in its input, or a longer --timeout"
        )
    return f"the run stopped {run.status.value}"


def run_case(
    settings: Settings, wf: WorkflowDef, case: GoldenCase, candidate: dict[str, Any],
    rev: str, timeout: float,
) -> CaseRun:  # fmt: skip
    lanes, log = FixtureLanes(case.fixtures), _PromptLog()
    with tempfile.TemporaryDirectory(prefix="tether-eval-") as tmp:
        s = eval_settings(settings, candidate, Path(tmp))
        foundations = _EvalFoundations(s, lanes, log)
        answering = AnsweringCheckpointer.from_settings(
            s, answers=case.answers, hitl=foundations.hitl
        )
        with Tether(s, checkpointer=answering, foundations=foundations) as t:
            try:
                run_id = t.start(wf, case.input)
            except TetherError as e:  # the case's input does not fit the workflow
                return CaseRun(case, None, f"{type(e).__name__}: {e}", log.config(rev))
            for event in case.events:
                t.send_event(event.name, event.data)
            stop = threading.Event()
            timer = threading.Timer(timeout, stop.set)
            timer.start()
            try:
                run = t.run(run_id, stop=stop)
            finally:
                timer.cancel()
            error = _error(t, run_id, timeout)
            output = t.output(run) if error is None else None
            return CaseRun(case, output, error, log.config(rev))


def run_cases(
    settings: Settings, wf: WorkflowDef, cases: list[GoldenCase], candidate: dict[str, Any],
    *, concurrency: int = 4, timeout: float = 60.0,
) -> list[CaseRun]:  # fmt: skip
    """Every case through the workflow, in the cases' order."""
    rev = revision()
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="eval") as pool:
        return list(pool.map(lambda c: run_case(settings, wf, c, candidate, rev, timeout), cases))
