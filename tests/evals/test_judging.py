"""Scoring a case: exact fields first, then the judge through I12; a hosted judge's JSON is
read out of prose or a code fence, and an answer with no score fails the case, never skips it."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.evals.conftest import guarded_judge
from tether.evals.harness import CaseRun
from tether.evals.judging import Judge
from tether.foundation.evals.contract import EvalConfig, GoldenCase
from tether.foundation.models.backends.scripted import ScriptedBackend
from tether.foundation.models.config import build_table
from tether.foundation.models.router import ModelRouter

CASE = GoldenCase(
    id="c", input={"q": "why journal?"}, expect={"label": "ok"}, rubric="journals; crash"
)


def _judge(*replies: str) -> tuple[Judge, ScriptedBackend]:
    judge = ScriptedBackend(list(replies))
    table = build_table({"judge": [{"backend": "hosted", "model": "grader", "family": "other"}]})
    router = ModelRouter(table, {"local": ScriptedBackend(), "hosted": judge})
    with tempfile.TemporaryDirectory() as tmp:
        return guarded_judge(router, Path(tmp))[0], judge


def _run(output: object) -> CaseRun:
    return CaseRun(CASE, output, None, EvalConfig(revision="r"))


def test_a_fenced_json_verdict_is_read_and_averaged_with_the_exact_fields() -> None:
    judge, backend = _judge('Here you go:\n```json\n{"score": 0.6, "reason": "partial"}\n```')
    [result] = judge.score_all([_run({"label": "ok", "text": "journals"})], "e", "main", "wf")
    assert result.metrics == {"expect.label": 1.0, "judge": 0.6}
    assert result.score == 0.8 and result.passed
    assert "Rubric: journals; crash" in backend.requests[0].messages[-1].content


def test_a_wrong_field_fails_the_case_whatever_the_judge_says() -> None:
    judge, _ = _judge('{"score": 1.0, "reason": "great"}')
    [result] = judge.score_all([_run({"label": "bad"})], "e", "main", "wf")
    assert not result.passed and result.metrics["expect.label"] == 0.0
    assert 'label: wanted "ok", got "bad"' in result.reason


def test_a_judge_answer_without_a_score_fails_the_case() -> None:
    judge, _ = _judge("Looks fine to me.")
    [result] = judge.score_all([_run({"label": "ok"})], "e", "main", "wf")
    assert not result.passed and result.score == 0.0
    assert result.error is not None and "not a JSON score" in result.error
