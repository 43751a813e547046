"""Scoring a case's output: the deterministic checks first, then the `judge` task class.

Each expectation is a metric: an exact field (1 if equal, else 0) or the judge's score of the
output against the case's rubric (or, for a captured case, against its reference output). The
case's score is their mean; it passes when every exact field holds and the judge scores at
least the pass mark. A case that errored, or a judge whose answer cannot be read, scores 0.

The judge is asked as any model call is: I9's policy and I10's limits judge it first (and
every routed attempt), and I11 prices it, attributed to the eval run (run id: the eval run's
id; workflow: `eval@<judged workflow>`, whose budget is `[limits.workflows.eval]`). A refusal
stops the eval with `EvalStopped` before any of its results is recorded: an eval graded in
part would skew the gate. INV-3 is checked before anything runs: the
judge's families must not meet the families of any other task class the routes name (the `*`
fallback included, which covers every task class a workflow may call without its own route),
so no workflow can be graded by its own family. Judgments are cached by a digest of (case,
output, rubric, judge model): an unchanged case is not judged, or paid for, twice.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from typing import Any

from tether.errors import CrossFamilyJudgeError, EvalStopped, GuardError, ModelError
from tether.evals.harness import CaseRun
from tether.foundation.cost.attributor import CostAttributor
from tether.foundation.evals.contract import CaseResult, EvalStore, GoldenCase, Judgment, digest
from tether.foundation.guards.chain import GuardChain, RouteGuard
from tether.foundation.guards.contract import CallOutcome, GuardedCall
from tether.foundation.models.config import JUDGE_TASK, RoutingTable
from tether.foundation.models.contract import Message, ModelRequest, RoutedResponse, Sensitivity
from tether.foundation.models.router import ModelRouter

PASS_MARK = 0.5
_SYSTEM = (
    "You grade an AI agent's answer against a rubric. Reply with only a JSON object: "
    '{"score": a number from 0 to 1, "reason": one sentence}.'
)


def check_judge_family(table: RoutingTable) -> None:
    """INV-3: CrossFamilyJudgeError naming the first task class whose routes share a family
    with the judge's."""
    judge = table.families(JUDGE_TASK)
    for key in sorted(table.routes):
        task = key.partition(":")[0]
        if task == JUDGE_TASK:
            continue
        for route in table.routes[key]:
            if route.family in judge:
                raise CrossFamilyJudgeError(
                    f"task class {task!r} routes to {route} of family {route.family!r}, which "
                    f"the judge may also use; route `{JUDGE_TASK}` to a model of another family "
                    f"(INV-3: an eval's judge must never grade its own family)"
                )


_MISSING = object()
_OBJECT = re.compile(r"\{.*\}", re.S)  # a model may wrap its JSON in prose or a code fence


def _lookup(data: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        elif isinstance(data, dict) and part in data:
            data = data[part]
        else:
            return _MISSING
    return data


def text_of(value: Any) -> str:
    """The words of a JSON value, one string leaf a line: what the judge reads as the answer."""
    if isinstance(value, dict):
        return "\n".join(text_of(v) for v in value.values())
    if isinstance(value, list):
        return "\n".join(text_of(v) for v in value)
    return "" if value is None else str(value)


EVAL_WORKFLOW = "eval"  # the judge's calls are the eval's: workflow `eval@<judged workflow>`


class Judge:
    """Scores case runs with the router's `judge` routes, through the guards and priced,
    caching in the eval store."""

    def __init__(
        self, router: ModelRouter, guards: GuardChain, cost: CostAttributor, store: EvalStore
    ) -> None:
        check_judge_family(router.table)
        self._router, self._guards, self._cost, self._store = router, guards, cost, store
        first = router.plan(JUDGE_TASK, Sensitivity.INTERNAL)[0]
        self.model = str(first)

    async def _complete(self, request: ModelRequest, call: GuardedCall) -> RoutedResponse:
        """One guarded, priced judge call, as `ctx.model` makes one (runtime/calls.py)."""
        try:
            self._guards.before(call)
        except GuardError as e:
            raise EvalStopped(call.step_id, e) from e
        hook = RouteGuard(self._guards, call)
        try:
            routed = await self._router.complete(request, before_attempt=hook)
        except (ModelError, GuardError) as e:
            hook.finish(CallOutcome(ok=False, error=str(e)))
            if isinstance(e, GuardError):
                raise EvalStopped(call.step_id, e) from e
            raise
        usage = routed.response.usage
        price = self._cost.price(routed)
        tokens = usage.input_tokens + usage.output_tokens
        hook.finish(CallOutcome(ok=True, tokens=tokens, cost_usd=float(price.usd)))
        self._cost.record(call.run_id, call.workflow, call.step_id, routed, price)
        return routed

    async def _judge(
        self, case: GoldenCase, output: Any, rubric: str, eval_run: str, workflow: str
    ) -> Judgment:
        key = digest(
            {"case": case.model_dump(mode="json"), "output": output, "rubric": rubric,
             "judge": self.model}
        )  # fmt: skip
        cached = self._store.judgment(key)
        if cached is not None:
            return cached
        prompt = (
            f"Question: {json.dumps(case.input, sort_keys=True)}\n"
            f"Answer: {text_of(output)}\n"
            f"Rubric: {rubric}"
        )
        request = ModelRequest(
            task_class=JUDGE_TASK, messages=[Message.system(_SYSTEM), Message.user(prompt)]
        )
        call = GuardedCall(
            run_id=eval_run, workflow=f"{EVAL_WORKFLOW}@{workflow}", step_id=f"judge:{case.id}",
            kind="model", target=JUDGE_TASK, arguments={"case": case.id, "rubric": rubric},
        )  # fmt: skip
        routed = await self._complete(request, call)
        try:
            found = _OBJECT.search(routed.response.text)
            verdict = json.loads(found.group(0) if found else routed.response.text)
            score = min(1.0, max(0.0, float(verdict["score"])))
        except (ValueError, TypeError, KeyError) as e:
            raise ModelError(f"the judge's answer is not a JSON score ({e})") from e
        d = routed.decision
        judgment = Judgment(
            score=score, reason=str(verdict.get("reason", "")), judge=f"{d.backend}/{d.model}"
        )
        self._store.put_judgment(key, judgment)
        return judgment

    def score_all(
        self, runs: Sequence[CaseRun], eval_run: str, ref: str, workflow: str
    ) -> list[CaseResult]:
        """Every run scored, in order, on one event loop (a vendor client keeps to its loop)."""

        async def each() -> list[CaseResult]:
            return [await self.score(r, eval_run, ref, workflow) for r in runs]

        return asyncio.run(each())

    async def score(self, run: CaseRun, eval_run: str, ref: str, workflow: str) -> CaseResult:
        case = run.case

        def result(score: float, passed: bool, metrics: dict[str, float], reason: str,
                   error: str | None = None) -> CaseResult:  # fmt: skip
            return CaseResult(
                eval_run=eval_run, ref=ref, workflow=workflow, case_id=case.id,
                cohorts=case.cohorts, score=round(score, 4), passed=passed, metrics=metrics,
                reason=reason, error=error, config=run.config,
            )  # fmt: skip

        if run.error is not None:
            return result(0.0, False, {}, "the case errored", run.error)
        metrics: dict[str, float] = {}
        reasons: list[str] = []
        for path, wanted in case.expect.items():
            got = _lookup(run.output, path)
            metrics[f"expect.{path}"] = 1.0 if got == wanted else 0.0
            if got != wanted:
                shown = "missing" if got is _MISSING else json.dumps(got)
                reasons.append(f"{path}: wanted {json.dumps(wanted)}, got {shown}")
        rubric = case.rubric or (text_of(case.reference) if case.reference is not None else None)
        judged_ok = True
        if rubric:
            try:
                judgment = await self._judge(case, run.output, rubric, eval_run, workflow)
            except ModelError as e:
                return result(0.0, False, metrics, "the judge failed", str(e))
            metrics["judge"] = judgment.score
            judged_ok = judgment.score >= PASS_MARK
            reasons.append(f"judge {judgment.judge}: {judgment.score:.2f} ({judgment.reason})")
        if not metrics:
            return result(0.0, False, {}, "the case has no expectation", "no metric to score")
        exact_ok = all(v == 1.0 for k, v in metrics.items() if k.startswith("expect."))
        score = sum(metrics.values()) / len(metrics)
        return result(score, exact_ok and judged_ok, metrics, "; ".join(reasons) or "all match")
