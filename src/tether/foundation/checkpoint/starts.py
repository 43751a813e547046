"""Debounce and throttle: when a new run may start, decided where it is created.

A burst of starts with one debounce key makes one run: it waits `pending` until `period`
seconds after the last start of the burst (its `start_at`), and each further start gives it
that start's input. A throttle spaces starts: at most `starts` runs of one throttle key may
start in any `per` seconds; a start past that waits `pending` for its turn. Either is decided
in the transaction that creates the run, under a lock per key, so concurrent starters agree.
The claim takes a pending run only once its `start_at` has passed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tether.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class Debounce:
    """The starts with this key within `period` seconds of each other make one run, which
    starts `period` seconds after the last of them with the last one's input."""

    key: str
    period: float

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key:
            raise ConfigurationError(f"a debounce key is a non-empty string, got {self.key!r}")
        if not isinstance(self.period, int | float) or not (0 < self.period < math.inf):
            raise ConfigurationError(
                f"debounce {self.key!r}: period must be a number of seconds above 0, "
                f"got {self.period!r}"
            )


@dataclass(frozen=True, slots=True)
class Throttle:
    """At most `starts` runs with this key start in any `per` seconds; later ones wait."""

    starts: int
    per: float
    key: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.starts, int) or self.starts < 1:
            raise ConfigurationError(
                f"throttle {self.key!r}: starts must be a whole number of at least 1, "
                f"got {self.starts!r}"
            )
        if not isinstance(self.per, int | float) or not (0 < self.per < math.inf):
            raise ConfigurationError(
                f"throttle {self.key!r}: per must be a number of seconds above 0, got {self.per!r}"
            )


def throttled_start(
    now: float, earliest: float, latest_starts: list[float], rule: Throttle
) -> float:
    """When a throttled run may start: not before `earliest`, and `per` after the oldest of the
    `starts` latest start times of its key (newest first), if there are that many."""
    if len(latest_starts) < rule.starts:
        return earliest
    return max(earliest, latest_starts[rule.starts - 1] + rule.per, now)
