"""The regression gate: candidate against baseline, cohort by cohort, over a rolling window.

Each side's sample is its last N judged results in the cohort (N=150 by default: a 3-point
threshold over 50 cases blocks about a third of neutral changes, a noisy judge's spread being
larger than the step). A release cannot wait for the window to fill: with `release` the
candidate's sample is only its latest eval run, the smaller sample it has, and the interval
widens to match.

The delta is candidate mean minus baseline mean with a 95% interval (normal approximation,
Welch's standard error). A cohort fails when the whole interval lies below zero, i.e. the
samples show a regression beyond the judge's noise, or when either side has no result (a
missing metric is a failure, never a skip). The gate fails on its worst cohort, not the
average. An override (who, why, when) lets a failing candidate through and is shown.

The golden set as a whole is compared too, for D10's trigger (an open-weight model may take a
task class once it is within 2 points of the baseline on the golden set); it does not decide.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from tether.foundation.evals.contract import EvalStore, Override

DEFAULT_WINDOW = 150
Z_95 = 1.96
D10_POINTS = 0.02
GOLDEN_SET = "(golden set)"


@dataclass(frozen=True)
class Comparison:
    """One cohort's numbers; `mean`s are None when that side has no result."""

    cohort: str
    baseline_n: int
    baseline_mean: float | None
    candidate_n: int
    candidate_mean: float | None
    delta: float | None
    low: float | None
    high: float | None

    @property
    def passed(self) -> bool:
        return self.high is not None and self.high >= 0.0


def _variance(xs: Sequence[float]) -> float:
    return statistics.variance(xs) if len(xs) > 1 else 0.0


def compare(cohort: str, baseline: Sequence[float], candidate: Sequence[float]) -> Comparison:
    """Candidate minus baseline, with its 95% interval."""
    if not baseline or not candidate:
        return Comparison(
            cohort, len(baseline), statistics.fmean(baseline) if baseline else None,
            len(candidate), statistics.fmean(candidate) if candidate else None, None, None, None,
        )  # fmt: skip
    b, c = statistics.fmean(baseline), statistics.fmean(candidate)
    se = math.sqrt(_variance(baseline) / len(baseline) + _variance(candidate) / len(candidate))
    delta = c - b
    return Comparison(
        cohort, len(baseline), b, len(candidate), c, delta, delta - Z_95 * se, delta + Z_95 * se
    )


@dataclass(frozen=True)
class GateReport:
    workflow: str
    baseline: str
    candidate: str
    window: int
    release: bool
    cohorts: list[Comparison]  # worst first
    golden: Comparison  # every case, whatever its cohort
    overrides: list[Override]

    @property
    def within_d10(self) -> bool:
        return self.golden.delta is not None and self.golden.delta >= -D10_POINTS

    @property
    def regressed(self) -> bool:
        return any(not c.passed for c in self.cohorts) or not self.cohorts


def _badness(c: Comparison) -> tuple[int, float]:
    return (0, 0.0) if c.high is None else (1, c.high)


def run_gate(
    store: EvalStore, workflow: str, baseline: str, candidate: str,
    window: int = DEFAULT_WINDOW, release: bool = False,
) -> GateReport:  # fmt: skip
    """Compare every cohort either ref has results in."""
    latest = store.latest_run(workflow, candidate) if release else None
    rows = []
    for cohort in store.cohorts(workflow, [baseline, candidate]):
        base = store.window(workflow, baseline, cohort, window)
        cand = store.window(workflow, candidate, cohort, window, eval_run=latest)
        rows.append(compare(cohort, [r.score for r in base], [r.score for r in cand]))
    rows.sort(key=_badness)
    golden = compare(
        GOLDEN_SET,
        [r.score for r in store.window(workflow, baseline, None, window)],
        [r.score for r in store.window(workflow, candidate, None, window, eval_run=latest)],
    )
    return GateReport(
        workflow, baseline, candidate, window, release, rows, golden, store.overrides(candidate)
    )
