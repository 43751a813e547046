"""The receipt for keys a workflow mints: `ctx.uuid()`, `ctx.now()` and `ctx.random()` are
committed before the primitive that uses them runs, so a worker SIGKILLed in the middle of
that primitive leaves a resumed run sending the *same* key again (what the key was minted
for), at the top level, inside gather branches, and as a tool call's arguments."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.runtime.test_crash_resume import executions
from tests.workers import kill_worker_when, run_worker_until
from tether import RunStatus, Tether
from tether.foundation.checkpoint.contract import TERMINAL


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def durable(
    request: pytest.FixtureRequest, make_tether: Callable[..., Tether]
) -> Iterator[tuple[Tether, dict[str, str]]]:
    """A Tether on a database workers share, and the environment that points workers at it."""
    if request.param == "sqlite":
        yield make_tether("sqlite"), {}
        return
    from tests.postgres.server import fresh_schema

    with fresh_schema("mint") as (url, schema):
        t = make_tether("postgres", checkpoint_database_url=url, checkpoint_schema=schema)
        yield (
            t,
            {
                "TETHER_CHECKPOINT": "postgres",
                "TETHER_CHECKPOINT_DATABASE_URL": url,
                "TETHER_CHECKPOINT_SCHEMA": schema,
            },
        )
        t.close()


def _kill_mid_charge_and_resume(
    durable: tuple[Tether, dict[str, str]], tmp_path: Path, charges: int, **inp: object
) -> tuple[Tether, str, Counter[str]]:
    """Start a charge run, SIGKILL its worker once every charge has reached the processor,
    resume it on a second worker; returns the keys the processor saw, with their counts."""
    t, env = durable
    log = tmp_path / "processor.log"
    run_id = t.start("charge", {"log": str(log), "pause": 1.0, **inp})
    kill_worker_when(tmp_path / ".tether", lambda: len(executions(log)) >= charges, env)
    assert t.status(run_id).status is RunStatus.RUNNING  # the dead worker still holds it
    run_worker_until(tmp_path / ".tether", lambda: t.status(run_id).status in TERMINAL, env)
    assert t.status(run_id).status is RunStatus.COMPLETED, t.status(run_id).error
    return t, run_id, executions(log)


def test_a_step_interrupted_by_a_crash_runs_again_with_the_key_minted_before_it(
    durable: tuple[Tether, dict[str, str]], tmp_path: Path
) -> None:
    t, run_id, seen = _kill_mid_charge_and_resume(durable, tmp_path, 1)
    [key] = seen  # one key only: the re-run sent the key the first attempt sent
    assert seen[key] == 2
    assert t.output(t.status(run_id)) == [key]


def test_gather_branches_keep_their_minted_keys_across_a_crash(
    durable: tuple[Tether, dict[str, str]], tmp_path: Path
) -> None:
    t, run_id, seen = _kill_mid_charge_and_resume(durable, tmp_path, 3, branches=3)
    assert len(seen) == 3 and set(seen.values()) == {2}, seen
    assert sorted(t.output(t.status(run_id))) == sorted(seen)


def test_an_interrupted_tool_call_finds_its_own_intent_row_with_the_minted_key(
    durable: tuple[Tether, dict[str, str]], tmp_path: Path
) -> None:
    t, run_id, seen = _kill_mid_charge_and_resume(durable, tmp_path, 1, by_tool=True)
    [key] = seen
    assert seen[key] == 2
    row = t.foundations.tools.lookup(run_id, "4")  # after the uuid, now and random entries
    assert row is not None and row.args["key"] == key and row.attempt == 2
