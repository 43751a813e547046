"""I5 contract: every eval store keeps results in order, windows them per cohort and run,
caches judgments once, and keeps the override audit rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from tests.postgres.server import fresh_schema
from tether.foundation.evals.backends.sqlite import SqliteEvalStore
from tether.foundation.evals.contract import CaseResult, EvalConfig, EvalStore, Judgment, Override
from tether.foundation.evals.memory import MemoryEvalStore
from tether.foundation.evals.store import open_eval_store
from tether.settings import Settings


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EvalStore]:
    if request.param == "memory":
        yield MemoryEvalStore()
        return
    if request.param == "sqlite":
        opened: EvalStore = SqliteEvalStore(f"sqlite:///{tmp_path / 'evals.db'}")
        yield opened
        opened.close()
        return
    from tether.foundation.evals.backends.postgres import PostgresEvalStore

    with fresh_schema("evals") as (url, schema), psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        opened = PostgresEvalStore(f"{url}?options=-csearch_path%3D{schema}")
        yield opened
        opened.close()


def result(case: str, score: float, *, ref: str = "main", run: str = "r1",
           cohorts: tuple[str, ...] = ("a",)) -> CaseResult:  # fmt: skip
    return CaseResult(
        eval_run=run, ref=ref, workflow="wf", case_id=case, cohorts=cohorts, score=score,
        passed=score >= 0.5, metrics={"judge": score}, config=EvalConfig(
            revision="abc", routes={"agent": ["local/rules-agent"]}, prompts={"agent": "sha256:x"}
        ),
    )  # fmt: skip


def test_window_is_the_last_n_of_a_ref_in_a_cohort_newest_first(store: EvalStore) -> None:
    store.record([result("c1", 0.1), result("c2", 0.2, cohorts=("a", "b"))])
    store.record([result("c3", 0.3, run="r2"), result("c4", 0.4, ref="pr")])
    assert [r.case_id for r in store.window("wf", "main", "a", 2)] == ["c3", "c2"]
    assert [r.case_id for r in store.window("wf", "main", "b", 10)] == ["c2"]
    assert [r.case_id for r in store.window("wf", "main", None, 10)] == ["c3", "c2", "c1"]
    assert [r.case_id for r in store.window("wf", "main", "a", 10, eval_run="r1")] == ["c2", "c1"]
    stored = store.window("wf", "main", "a", 1)[0]
    assert stored.config.prompts == {"agent": "sha256:x"} and stored.recorded_at is not None
    assert store.latest_run("wf", "main") == "r2" and store.latest_run("wf", "none") is None
    assert store.cohorts("wf", ["main"]) == ["a", "b"]
    assert store.workflows(["pr"]) == ["wf"] and store.workflows(["other"]) == []


def test_recent_is_the_last_n_of_every_workflow_and_ref_newest_first(store: EvalStore) -> None:
    store.record([result("c1", 0.1), result("c2", 0.2, ref="pr")])
    store.record([result("c3", 0.3, run="r2")])
    assert [(r.case_id, r.ref) for r in store.recent(2)] == [("c3", "main"), ("c2", "pr")]
    assert [r.case_id for r in store.recent(10)] == ["c3", "c2", "c1"]
    assert store.recent(10)[0].config.routes == {"agent": ["local/rules-agent"]}


def test_a_judgment_is_cached_once_under_its_key(store: EvalStore) -> None:
    assert store.judgment("k") is None
    store.put_judgment("k", Judgment(score=0.8, reason="first", judge="local/rubric-judge"))
    store.put_judgment("k", Judgment(score=0.1, reason="second", judge="local/rubric-judge"))
    assert store.judgment("k") == Judgment(score=0.8, reason="first", judge="local/rubric-judge")


def test_overrides_are_kept_per_candidate_with_who_and_why(store: EvalStore) -> None:
    at = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    store.add_override(Override(baseline="main", candidate="pr", subject="ana", reason="ok", at=at))
    assert store.overrides("pr") == [
        Override(baseline="main", candidate="pr", subject="ana", reason="ok", at=at)
    ]
    assert store.overrides("main") == []


def test_the_store_follows_the_evals_database_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'own.db'}"
    s = Settings(data_dir=tmp_path, evals_database_url=url)
    opened = open_eval_store(s)
    assert isinstance(opened, SqliteEvalStore) and opened.path == tmp_path / "own.db"
    opened.close()
    memory = open_eval_store(Settings(data_dir=tmp_path, database_url="memory://"))
    assert isinstance(memory, MemoryEvalStore)
