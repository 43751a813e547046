"""The shortened crash storm `make test` runs: 100 runs while workers are SIGKILLed at random.
(`make chaos` runs 1,000 on SQLite and on PostgreSQL.)"""

from __future__ import annotations

import pytest

from tests.chaos.storm import VIOLATIONS, backend_settings, storm


@pytest.mark.slow
@pytest.mark.timeout(400)
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_crash_storm_loses_nothing_and_repeats_no_side_effect(backend: str) -> None:
    env, workers = backend_settings(backend)
    if env is None:
        pytest.skip(str(workers))
    report = storm(runs=100, workers=int(workers), backend_env=env, timeout=300, seed=11)
    assert report["kills"] >= 3, report  # the storm really hit the workers
    assert report["completed"] == report["runs"] == 100, report
    assert {k: report.get(k, 0) for k in VIOLATIONS} == dict.fromkeys(VIOLATIONS, 0), report
    assert report["step executions"] >= 500
