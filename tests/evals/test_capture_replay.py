"""A finished run captured as a golden case replays with no side effect and no sandbox: its
tool results come from the journal, and a call the capture never saw fails the case by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.evals.conftest import guarded_judge
from tether import Settings, Tether
from tether.evals.capture import capture
from tether.evals.cases import load_cases
from tether.evals.harness import run_cases
from tether.foundation.models.contract import ModelRequest, RoutedResponse
from tether.foundation.models.router import BeforeAttempt, ModelRouter
from tether.foundation.tools import local


class CountingRouter(ModelRouter):
    calls = 0

    async def complete(
        self, request: ModelRequest, *, before_attempt: BeforeAttempt | None = None
    ) -> RoutedResponse:
        self.calls += 1
        return await super().complete(request, before_attempt=before_attempt)


TICKET = {"ticket_id": "T-9", "text": "I was charged twice this month, please refund me"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / ".tether", trace="none", poll_interval=0.02,
        workflows=["workflows.support_triage"],
    )  # fmt: skip


def _outbox(settings: Settings) -> list[str]:
    sent = settings.data_path / "tools" / "workspaces" / "outbox" / "sent.log"
    return sent.read_text().splitlines() if sent.exists() else []


def test_a_captured_run_replays_with_no_side_effect_and_no_sandbox(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Tether(settings) as t:
        run_id = t.start("support_triage", TICKET)
        assert t.run(run_id).status.value == "completed"
        captured = capture(t, run_id, tags=["billing"], case_id="refund")
    assert len(_outbox(settings)) == 1  # the real run sent its email
    case = captured.case
    assert case.tags == ("billing",) and case.reference["queue"] == "finance"
    assert [f.tool for f in case.fixtures] == ["email_customer"]

    def no_sandbox(*args: object, **kwargs: object) -> None:
        raise AssertionError("an eval started a tool lane")

    monkeypatch.setattr(local.LocalLanes, "__init__", no_sandbox)
    [replayed] = run_cases(settings, captured.workflow, [case], {})
    assert replayed.error is None and replayed.output == case.reference
    assert len(_outbox(settings)) == 1  # no second email

    router = CountingRouter.from_settings(settings)
    judge, _ = guarded_judge(router, settings.data_path / "judge")
    [result] = judge.score_all([replayed], "e1", "main", "support_triage")
    assert result.passed and result.score == 1.0
    assert result.config.routes == {"cheap_classify": ["local/tfidf-logreg"]}
    assert router.calls == 1
    # the same output is not judged again: the cached judgment answers
    [again] = judge.score_all([replayed], "e2", "main", "support_triage")
    assert again.metrics == result.metrics and router.calls == 1


def test_a_tool_call_with_no_fixture_fails_the_case_naming_tool_and_arguments(
    settings: Settings,
) -> None:
    with Tether(settings) as t:
        run_id = t.start("support_triage", TICKET)
        t.run(run_id)
        captured = capture(t, run_id)
    bare = captured.case.model_copy(update={"fixtures": ()})
    [replayed] = run_cases(settings, captured.workflow, [bare], {})
    assert replayed.error is not None and "FixtureMissing" in replayed.error
    assert "'email_customer'" in replayed.error and '"ticket_id": "T-9"' in replayed.error
    judge, _ = guarded_judge(ModelRouter.from_settings(settings), settings.data_path / "judge")
    [result] = judge.score_all([replayed], "e1", "main", "support_triage")
    assert not result.passed and result.score == 0.0 and result.error == replayed.error


def test_a_case_whose_wait_gets_no_answer_errors_after_its_timeout(settings: Settings) -> None:
    with Tether(settings) as t:
        wf = t.registry.get("support_triage")
    [site_down] = [c for c in load_cases(wf) if c.id == "site-down"]
    # as shipped, nobody answers the approval and it escalates, then expires, in under a second
    [answered] = run_cases(settings, wf, [site_down], {})
    assert answered.error is None and answered.output["queue"] == "escalations"
    patient = site_down.model_copy(
        update={"input": {**site_down.input, "approval_timeout_seconds": 3600.0}}
    )
    [stuck] = run_cases(settings, wf, [patient], {}, timeout=0.5)
    assert stuck.error is not None and "still waiting after 0.5s" in stuck.error
