"""The gate's statistics: on neutral changes (same prompt, same model, a noisy judge), the
rolling N=150 gate with its interval blocks at most one in twenty, where N=50 with a 3-point
threshold blocks several. Printed with -s; the numbers are in the assertion messages too."""

from __future__ import annotations

import random
import statistics

from tether.foundation.evals.gate import compare

CASES = 50  # one eval run of the golden set
CHANGES = 20
JUDGE_NOISE = 0.2  # standard deviation of one judgment around the case's true quality


def _eval_run(rng: random.Random, quality: list[float]) -> list[float]:
    return [min(1.0, max(0.0, rng.gauss(q, JUDGE_NOISE))) for q in quality]


def test_rolling_150_blocks_at_most_one_neutral_change_where_50_with_3_points_blocks_several() -> (
    None
):
    rng = random.Random(17)
    quality = [rng.uniform(0.55, 0.95) for _ in range(CASES)]
    main = [s for _ in range(3) for s in _eval_run(rng, quality)]  # the baseline's history
    blocked_rolling = blocked_naive = 0
    for _ in range(CHANGES):
        candidate = [s for _ in range(3) for s in _eval_run(rng, quality)]
        if not compare("all", main[-150:], candidate[-150:]).passed:
            blocked_rolling += 1
        if statistics.fmean(candidate[-50:]) - statistics.fmean(main[-50:]) < -0.03:
            blocked_naive += 1
        main += _eval_run(rng, quality)  # main moves on: its window rolls
    report = (
        f"{CHANGES} neutral changes, judge noise sd {JUDGE_NOISE}: rolling N=150 with a 95% "
        f"interval blocked {blocked_rolling}; N=50 with a 3-point threshold blocked {blocked_naive}"
    )
    print(report)
    assert blocked_rolling <= 1, report
    assert blocked_naive >= 3, report
