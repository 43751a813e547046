"""The judge's model call is no free call: I10's limits and I9's policy judge it and I11 prices
it, attributed to the eval run (workflow `eval@<workflow>`); a refusal stops the eval with one
line naming the case, and records none of its results."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.evals.conftest import Cli, guarded_judge
from tether.errors import BudgetExceeded, EvalStopped
from tether.evals.harness import CaseRun
from tether.foundation.evals.contract import EvalConfig, GoldenCase
from tether.foundation.models.backends.scripted import ScriptedBackend
from tether.foundation.models.config import build_table
from tether.foundation.models.router import ModelRouter

VERDICT = '{"score": 0.9, "reason": "covers it"}'


def _router(replies: int) -> ModelRouter:
    hosted = ScriptedBackend([VERDICT] * replies, provider="anthropic")
    route = {"backend": "hosted", "model": "claude-sonnet-4-6", "family": "anthropic"}
    return ModelRouter(
        build_table({"judge": [route]}), {"local": ScriptedBackend(), "hosted": hosted}
    )


def _runs(n: int) -> list[CaseRun]:
    return [
        CaseRun(GoldenCase(id=f"c{i}", input={"q": i}, rubric="mentions journals"),
                {"answer": f"journals, take {i}"}, None, EvalConfig(revision="r"))
        for i in range(n)
    ]  # fmt: skip


def test_each_judge_call_is_priced_under_the_eval_run(tmp_path: Path) -> None:
    judge, foundations = guarded_judge(_router(2), tmp_path)
    results = judge.score_all(_runs(2), "eval-7", "main", "support_triage")
    assert all(r.passed for r in results)
    calls = foundations.cost.calls("eval-7")
    print([(c.step_id, c.model, c.usd) for c in calls])
    assert [c.step_id for c in calls] == ["judge:c0", "judge:c1"]
    assert {c.workflow for c in calls} == {"eval@support_triage"}
    assert all(c.priced and c.usd > 0 and c.model == "claude-sonnet-4-6" for c in calls)
    assert foundations.cost.run_total("eval-7").usd == sum(c.usd for c in calls)


def test_the_eval_budget_stops_the_judge_at_its_cap(tmp_path: Path) -> None:
    judge, foundations = guarded_judge(
        _router(3), tmp_path, workflows={"eval": {"model_call_cap": 2}}
    )
    with pytest.raises(EvalStopped) as stopped:
        judge.score_all(_runs(3), "eval-8", "main", "support_triage")
    assert isinstance(stopped.value.refusal, BudgetExceeded)
    assert str(stopped.value).startswith("eval stopped at judge:c2: the judge's call was refused")
    assert "[limits.workflows.eval]" in str(stopped.value)
    assert len(foundations.cost.calls("eval-8")) == 2  # the refused call was not made


def test_tether_eval_run_stops_on_a_limit_denial_and_records_nothing(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "tether.toml").write_text("[limits.workflows.eval]\nmodel_call_cap = 1\n")
    monkeypatch.chdir(tmp_path)
    stopped = cli("run", "research_report", "--ref", "capped")
    assert isinstance(stopped.exception, EvalStopped)  # `tether`: one line, exit code 2
    assert "eval stopped at judge:two-angles" in str(stopped.exception)  # four-angles was judged
    gate = cli("gate", "--baseline", "capped", "--candidate", "capped")
    assert "no eval results under capped" in str(gate.exception)
