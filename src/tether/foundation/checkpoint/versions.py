"""Version order for what I2 reports about versions: highest semver first."""

from __future__ import annotations

from tether.foundation.checkpoint.contract import Resumer


def semver(version: str) -> tuple[int, ...]:
    """`1.10.0` above `1.9.0`; a part that is not a number counts as 0."""
    return tuple(int(p) if p.isdigit() else 0 for p in version.split("."))


def highest_first(resumers: list[Resumer]) -> list[Resumer]:
    return sorted(resumers, key=lambda r: semver(r.version), reverse=True)
