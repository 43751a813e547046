"""What a child measures, and the small clocks it measures with.

Wall time is `perf_counter` over the timed region only (imports and database setup stay outside
it); CPU time is this process's user+system time from `getrusage` over the same region, so a
framework's start-up cost never masquerades as per-step cost. Work done in worker processes is
reported by the workers themselves (`bench.processes`) and added by the adapter.
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def cpu_seconds() -> float:
    """User + system CPU of this process so far."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def peak_rss_kb() -> int:
    """Peak resident set of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def current_rss_kb() -> int:
    """Resident set right now, for growth curves (peak RSS only ever rises)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() // 1024


@dataclass
class Sample:
    """One measurement, as the child hands it back.

    `observed` holds the facts the harness checks before it counts the timing (the output, how
    many steps were journaled and executed); `extra` holds secondary numbers for the report.
    """

    wall_s: float
    cpu_s: float
    units: int
    observed: dict[str, Any]
    peak_rss_kb: int = field(default_factory=peak_rss_kb)
    extra: dict[str, Any] = field(default_factory=dict)


class Timer:
    """Wall and CPU seconds over a `with` block."""

    wall_s: float = 0.0
    cpu_s: float = 0.0

    def __enter__(self) -> Timer:
        self._wall0 = time.perf_counter()
        self._cpu0 = cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_s = time.perf_counter() - self._wall0
        self.cpu_s = cpu_seconds() - self._cpu0


class Stamps:
    """A file a step appends `index epoch-seconds` to when it runs.

    Latency workloads cross processes (a sender here, the waiting workflow in a worker), so the
    moment "the next step ran" is taken inside the step with the shared wall clock and read back
    from this file; that works the same for every system, whatever its result API.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def stamp(self, index: int) -> None:
        with open(self.path, "a") as f:
            f.write(f"{index} {time.time()!r}\n")

    def read(self) -> dict[int, float]:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return {}
        out: dict[int, float] = {}
        # The last piece is empty or a line still being written: only whole lines count.
        for line in text.split("\n")[:-1]:
            i, _, t = line.partition(" ")
            out[int(i)] = float(t)
        return out

    def wait_for(self, index: int, timeout: float = 60.0) -> float:
        """The time stamped for `index`, polling every 2 ms (the sender's only load)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.read().get(index)
            if got is not None:
                return got
            time.sleep(0.002)
        raise TimeoutError(f"step {index} did not run within {timeout:.0f}s")
