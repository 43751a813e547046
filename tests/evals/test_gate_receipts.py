"""The EvalGate receipts, through `tether eval` as CI runs it: a degraded prompt and a weaker
model each fail the gate while the baseline passes; a same-family judge refuses to run; an
override needs a person and a reason, and the next gate shows it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import workflows.research_report.workflow as research
from tests.evals.conftest import JWT_KEY, WEAK_AGENT, Cli
from tether.errors import ConfigurationError, CrossFamilyJudgeError, IdentityError
from tether.foundation.evals.contract import CaseResult
from tether.foundation.evals.store import open_eval_store
from tether.foundation.identity.backends.jwt import JwtIdentityProvider
from tether.foundation.secrets.contract import Secret
from tether.settings import Settings


def _latest(ref: str) -> CaseResult:
    store = open_eval_store(Settings())
    try:
        return store.window("research_report", ref, "research", 1)[0]
    finally:
        store.close()


def _prompts(ref: str) -> dict[str, str]:
    return _latest(ref).config.prompts


def test_a_degraded_prompt_fails_the_gate_and_the_baseline_passes(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("run", "research_report", "--ref", "main").exit_code == 0
    assert cli("run", "research_report", "--ref", "same").exit_code == 0
    # the candidate's code: the system prompt the local agent reads no longer leads to the tool
    monkeypatch.setattr(research, "_SYSTEM", "You are a helpful assistant. Reply briefly.")
    degraded = cli("run", "research_report", "--ref", "prompt")
    assert degraded.exit_code == 0, degraded.output
    assert "FAIL" in degraded.output
    # the drop is the judge's, on the output the agent really wrote
    assert _latest("prompt").metrics["judge"] < 0.5 <= _latest("main").metrics["judge"]

    gate = cli("gate", "--baseline", "main", "--candidate", "prompt")
    assert gate.exit_code == 1, gate.output
    assert "gate: FAIL, regressed in research_report" in gate.output
    same = cli("gate", "--baseline", "main", "--candidate", "same")
    assert same.exit_code == 0 and "within D10's 2 points" in same.output
    assert "outside D10's 2 points" in gate.output
    # the results say why: same routes, other messages sent to the agent
    assert _prompts("prompt")["agent"] != _prompts("main")["agent"]
    assert _prompts("same") == _prompts("main")


def test_a_weaker_model_for_a_task_class_fails_the_gate(
    cli: Cli, candidate: Callable[[str], str]
) -> None:
    assert cli("run", "research_report", "--ref", "main").exit_code == 0
    weak = cli("run", "research_report", "--ref", "weak", "--candidate", candidate(WEAK_AGENT))
    assert weak.exit_code == 0, weak.output
    gate = cli("gate", "--baseline", "main", "--candidate", "weak", "-w", "research_report")
    assert gate.exit_code == 1, gate.output
    for column in ("cohort", "baseline", "candidate", "delta", "interval", "verdict"):
        assert column in gate.output
    assert "FAIL" in gate.output


def test_a_workflow_the_candidate_never_ran_counts_as_a_failure(cli: Cli) -> None:
    assert cli("run", "research_report", "--ref", "main").exit_code == 0
    gate = cli("gate", "--baseline", "main", "--candidate", "pr", "-w", "research_report")
    assert gate.exit_code == 1 and "no results" in gate.output


@pytest.mark.parametrize("task", ["summarize", "agent"])
def test_a_same_family_judge_refuses_to_run_naming_the_task_class(
    cli: Cli, candidate: Callable[[str], str], task: str
) -> None:
    # the task class goes to a model of the judge's family (local-rubric)
    same = f"""
[model_routes]
{task} = [{{backend = "local", model = "extractive", family = "local-rubric"}}]
"""
    refused = cli("run", "research_report", "--ref", "same", "--candidate", candidate(same))
    assert isinstance(refused.exception, CrossFamilyJudgeError)
    assert task in str(refused.exception) and "INV-3" in str(refused.exception)
    store = open_eval_store(Settings())
    assert store.workflows(["same"]) == []  # refused before any case ran
    store.close()


def test_an_override_needs_a_person_and_a_reason_and_the_next_gate_shows_it(
    cli: Cli, candidate: Callable[[str], str]
) -> None:
    assert cli("run", "research_report", "--ref", "main").exit_code == 0
    assert cli("run", "research_report", "--ref", "weak", "--candidate", candidate(WEAK_AGENT))
    assert cli("gate", "--baseline", "main", "--candidate", "weak").exit_code == 1

    nobody = cli("override", "--baseline", "main", "--candidate", "weak", "--reason", "known")
    assert nobody.exit_code == 2 and "token" in nobody.output.lower()
    eve = JwtIdentityProvider(Secret("K", "another-key-" * 4)).issue("eve")  # signed elsewhere
    forged = cli(
        "override", "--baseline", "main", "--candidate", "weak", "--reason", "x", "--token", eve
    )
    assert isinstance(forged.exception, IdentityError)
    token = JwtIdentityProvider(Secret("TETHER_JWT_KEY", JWT_KEY)).issue("ana")
    args = ["override", "--baseline", "main", "--candidate", "weak", "--token", token]
    assert cli(*args, "--reason", "  ").exit_code != 0
    done = cli(*args, "--reason", "the summary model is retired next week")
    assert done.exit_code == 0, done.output

    gate = cli("gate", "--baseline", "main", "--candidate", "weak")
    assert gate.exit_code == 0, gate.output
    assert "override by ana" in gate.output
    assert "the summary model is retired next week" in gate.output
    assert "passed by override" in gate.output
    assert "eve" not in gate.output


def test_a_candidate_cannot_choose_its_own_judge(cli: Cli, candidate: Callable[[str], str]) -> None:
    lenient = """
[model_routes]
judge = [{backend = "local", model = "rubric-judge", family = "other"}]
"""
    refused = cli("run", "research_report", "--candidate", candidate(lenient))
    assert isinstance(refused.exception, ConfigurationError)
    assert "judge comes from the settings" in str(refused.exception)


def test_a_release_gate_samples_only_the_candidates_latest_eval_run(
    cli: Cli, candidate: Callable[[str], str]
) -> None:
    assert cli("run", "research_report", "--ref", "main").exit_code == 0
    for _ in range(2):
        assert cli("run", "research_report", "--ref", "v2", "--candidate", candidate(WEAK_AGENT))
    assert cli("run", "research_report", "--ref", "v2").exit_code == 0  # the fix, same tag
    rolling = cli("gate", "--baseline", "main", "--candidate", "v2")
    assert rolling.exit_code == 1 and "last 150" in rolling.output  # the weak runs still count
    release = cli("gate", "--baseline", "main", "--candidate", "v2", "--release")
    assert release.exit_code == 0, release.output
    golden_set = len(list(Path(research.__file__).parent.glob("evals/*.yaml")))
    # every case is in the research cohort: each counted once, from the latest run only
    assert "latest eval run" in release.output and f"(n={golden_set})" in release.output
