"""The workloads of issues 8 and 21 (a tool call's cost): their sizes, the number each one is
judged by, and the facts a system's result must show before its timing counts.

Every primary metric is a cost (lower is better), so a tether/peer ratio below 1 always means
tether did better. Adapters return `observed` facts in one vocabulary (`total`, `journaled`,
`executed`, ...); `expected` says what those facts must be for the run to have been correct.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Params = dict[str, Any]
SampleDict = dict[str, Any]


def _sum_of_add_one(n: int) -> int:
    """What `total += i + 1 for i in range(n)` ends at: every workflow's checksum."""
    return n * (n + 1) // 2


@dataclass(frozen=True)
class Workload:
    name: str
    title: str
    entry: str  # the adapter function that measures it
    durable: bool  # False: fsync off
    full: Params
    quick: Params
    metric: str  # what the primary number is, lower is better
    value: Callable[[SampleDict, Params], float]
    expected: Callable[[Params], dict[str, Any]]
    secondary: Callable[[SampleDict, Params], dict[str, float]]

    def params(self, quick: bool) -> Params:
        return dict(self.quick if quick else self.full)

    def check(self, sample: SampleDict, params: Params) -> str | None:
        """Why the sample is wrong, or None if its result is what a correct run produces."""
        observed = sample.get("observed", {})
        wrong = [
            f"{key}={observed.get(key)!r} (expected {want!r})"
            for key, want in self.expected(params).items()
            if observed.get(key) != want
        ]
        return "; ".join(wrong) or None


def _per_step_us(s: SampleDict, p: Params) -> float:
    return s["wall_s"] / s["units"] * 1e6


def _seq_secondary(s: SampleDict, p: Params) -> dict[str, float]:
    return {
        "steps/s": s["units"] / s["wall_s"],
        "CPU µs/step": s["cpu_s"] / s["units"] * 1e6,
    }


def _seq_expected(p: Params) -> dict[str, Any]:
    return {"total": _sum_of_add_one(p["n"]), "journaled": p["n"], "executed": p["n"]}


def _batch_expected(p: Params) -> dict[str, Any]:
    steps = p["runs"] * p["steps"]
    return {"completed": p["runs"], "correct": p["runs"], "journaled": steps, "executed": steps}


def _latencies_ms(s: SampleDict) -> list[float]:
    return [x * 1e3 for x in s["extra"]["latencies_s"]]


SEQ = Workload(
    name="seq",
    title="1,000 sequential steps, default durability",
    entry="seq",
    durable=True,
    full={"n": 1000},
    quick={"n": 100},
    metric="wall µs/step",
    value=_per_step_us,
    expected=_seq_expected,
    secondary=_seq_secondary,
)

SEQ_NOSYNC = Workload(
    name="seq-nosync",
    title="1,000 sequential steps, fsync off (tmpfs, synchronous=OFF / synchronous_commit=off)",
    entry="seq",
    durable=False,
    full={"n": 1000},
    quick={"n": 100},
    metric="CPU µs/step",
    value=lambda s, p: s["cpu_s"] / s["units"] * 1e6,
    expected=_seq_expected,
    secondary=lambda s, p: {
        "wall µs/step": _per_step_us(s, p),
        "steps/s": s["units"] / s["wall_s"],
    },
)


# The runs a tether worker executes at once, whose appends share commits (issue 21): the
# batch workloads' setting, stated in the report. Peers run their own way (one run at a time
# per process, as their batch adapters always have).
BATCH_CONCURRENCY = 16


def _batch(workers: int) -> Workload:
    return Workload(
        name=f"batch-w{workers}",
        title=f"200 workflows × 10 steps, {workers} worker process{'es' if workers > 1 else ''}"
        f" (tether: {BATCH_CONCURRENCY} runs at once per worker)",
        entry="batch",
        durable=True,
        full={"runs": 200, "steps": 10, "workers": workers, "concurrency": BATCH_CONCURRENCY},
        quick={"runs": 20, "steps": 10, "workers": workers, "concurrency": BATCH_CONCURRENCY},
        metric="wall ms/workflow",
        value=lambda s, p: s["wall_s"] / s["units"] * 1e3,
        expected=_batch_expected,
        secondary=lambda s, p: {"workflows/s": s["units"] / s["wall_s"]},
    )


def _concurrency(runs_at_once: int) -> Workload:
    """Issue 21: steps/s of one tether worker process against how many runs it holds at once
    (how many appends can share a commit); the floor is the same 2,000 single-row commits."""
    return Workload(
        name=f"concurrency-{runs_at_once}",
        title=f"200 workflows × 10 steps, one worker process holding {runs_at_once} at once",
        entry="concurrency",
        durable=True,
        full={"runs": 200, "steps": 10, "workers": 1, "concurrency": runs_at_once},
        quick={"runs": 64, "steps": 10, "workers": 1, "concurrency": runs_at_once},
        metric="wall µs/step",
        value=lambda s, p: s["wall_s"] / (s["units"] * p["steps"]) * 1e6,
        expected=_batch_expected,
        secondary=lambda s, p: {"steps/s": s["units"] * p["steps"] / s["wall_s"]},
    )


FANOUT = Workload(
    name="fanout",
    title="one workflow gathering 500 parallel steps",
    entry="fanout",
    durable=True,
    full={"n": 500},
    quick={"n": 50},
    metric="wall ms",
    value=lambda s, p: s["wall_s"] * 1e3,
    expected=_seq_expected,
    secondary=lambda s, p: {
        "µs/step": _per_step_us(s, p),
        "CPU µs/step": s["cpu_s"] / s["units"] * 1e6,
    },
)

EVENT = Workload(
    name="event",
    title="send_event → the waiting workflow's next step running",
    entry="event",
    durable=True,
    full={"events": 20},
    quick={"events": 3},
    metric="median latency ms",
    value=lambda s, p: statistics.median(_latencies_ms(s)),
    expected=lambda p: {"delivered": p["events"]},
    secondary=lambda s, p: {"min ms": min(_latencies_ms(s)), "max ms": max(_latencies_ms(s))},
)

RESUME = Workload(
    name="resume",
    title="a killed run with 1,000 finished steps → its next new step running",
    entry="resume",
    durable=True,
    full={"n": 1000},
    quick={"n": 100},
    metric="ms to next step",
    value=lambda s, p: s["wall_s"] * 1e3,
    expected=lambda p: {"total": _sum_of_add_one(p["n"]), "journaled": p["n"] + 1, "reexecuted": 0},
    secondary=lambda s, p: {"CPU ms": s["cpu_s"] * 1e3},
)

MEMORY = Workload(
    name="memory",
    title="a worker holding 1,000 parked (sleeping) runs",
    entry="memory",
    durable=True,
    full={"runs": 1000},
    quick={"runs": 100},
    metric="peak RSS MB",
    value=lambda s, p: s["peak_rss_kb"] / 1024,
    expected=lambda p: {"parked": p["runs"]},
    secondary=lambda s, p: {
        "RSS MB before": s["extra"]["rss_kb_before"] / 1024,
        "KB/parked run": (s["extra"]["rss_kb_all"] - s["extra"]["rss_kb_tenth"])
        / (0.9 * p["runs"]),
    },
)


def _call_ms(s: SampleDict, kind: str) -> list[float]:
    """Per-call milliseconds after the first: the first pays the lane's cold start."""
    return [x * 1e3 for x in s["extra"][f"{kind}_s"][1:]]


def _added_p50_ms(s: SampleDict, p: Params) -> float:
    return statistics.median(_call_ms(s, "tool")) - statistics.median(_call_ms(s, "step"))


def _tool_secondary(s: SampleDict, p: Params) -> dict[str, float]:
    calls = _call_ms(s, "tool")
    return {
        "p50 ms/call": statistics.median(calls),
        "p95 ms/call": statistics.quantiles(calls, n=20)[18],
        "first call ms": s["extra"]["tool_s"][0] * 1e3,
        "ctx.step p50 ms": statistics.median(_call_ms(s, "step")),
        "lane p50 ms": statistics.median(_call_ms(s, "lane")),
    }


def _tool(lane: str) -> Workload:
    """Issue 21: what a pure tool call costs on a lane, over a plain step of the same function."""
    return Workload(
        name="tool" if lane == "local" else f"tool-{lane}",
        title=f"100 sequential calls of a pure tool on the {lane} lane, default durability",
        entry="tool",
        durable=True,
        full={"n": 100, "lane": lane},
        quick={"n": 20, "lane": lane},
        metric="p50 ms/call added over ctx.step",
        value=_added_p50_ms,
        expected=lambda p: {
            "total": _sum_of_add_one(p["n"]),
            "step_total": _sum_of_add_one(p["n"]),
            "journaled": p["n"],
        },
        secondary=_tool_secondary,
    )


def _percentile(s: SampleDict, q: float) -> float:
    latencies = sorted(_latencies_ms(s))
    return latencies[min(len(latencies) - 1, int(len(latencies) * q))]


API = Workload(
    name="api",
    title="GET /api/runs, first page of 50, with 100,000 runs in the database",
    entry="api",
    durable=True,
    full={"runs": 100_000, "requests": 200},
    quick={"runs": 10_000, "requests": 50},
    metric="p95 ms",
    value=lambda s, p: _percentile(s, 0.95),
    expected=lambda p: {"listed": 50, "newest_first": True},
    secondary=lambda s, p: {"p50 ms": _percentile(s, 0.5), "max ms": max(_latencies_ms(s))},
)


def _agent_secondary(s: SampleDict, p: Params) -> dict[str, float]:
    return {"turns/s": s["units"] / s["wall_s"], "CPU µs/turn": s["cpu_s"] / s["units"] * 1e6}


AGENT = Workload(
    name="agent",
    title="agents of 10 turns (a scripted model call, then a pure tool call), default "
    "durability, after one untimed agent",
    entry="agent",
    durable=True,
    full={"runs": 10, "turns": 10},
    quick={"runs": 2, "turns": 10},
    metric="wall ms/turn",
    value=lambda s, p: s["wall_s"] / s["units"] * 1e3,
    expected=lambda p: {
        "total": p["runs"] * _sum_of_add_one(p["turns"]),
        "calls": 2 * p["runs"] * p["turns"],
    },
    secondary=_agent_secondary,
)

START = Workload(
    name="start",
    title="Tether.start returning → the run's first step executing in an idle running worker",
    entry="start",
    durable=True,
    full={"starts": 100},
    quick={"starts": 20},
    metric="p50 ms",
    value=lambda s, p: _percentile(s, 0.5),
    expected=lambda p: {"started": p["starts"]},
    secondary=lambda s, p: {"p95 ms": _percentile(s, 0.95), "max ms": max(_latencies_ms(s))},
)

STREAM = Workload(
    name="stream",
    title="1,000 sequential ctx.stream appends over 1,000 ctx.step (seq shape), default "
    "durability (issue 22: within 1.2x)",
    entry="stream",
    durable=True,
    full={"n": 1000},
    quick={"n": 100},
    metric="append wall / step wall (x)",
    value=lambda s, p: s["wall_s"] / s["extra"]["step_wall_s"],
    expected=lambda p: {
        "total": _sum_of_add_one(p["n"]),
        "step_total": _sum_of_add_one(p["n"]),
        "journaled": p["n"],
        "streamed": p["n"],
    },
    secondary=lambda s, p: {
        "wall µs/append": _per_step_us(s, p),
        "wall µs/step": s["extra"]["step_wall_s"] / s["units"] * 1e6,
        "CPU µs/append": s["cpu_s"] / s["units"] * 1e6,
    },
)

QUEUE = Workload(
    name="queue-claim",
    title="200 workflows × 10 steps, 3 worker processes, in a limited queue over in none "
    "(issue 22: at most 1.2x)",
    entry="queue",
    durable=True,
    full={"runs": 200, "steps": 10, "workers": 3},
    quick={"runs": 20, "steps": 10, "workers": 3},
    metric="queued wall / plain wall (x)",
    value=lambda s, p: s["wall_s"] / s["extra"]["plain_wall_s"],
    expected=lambda p: {"completed": p["runs"], "correct": p["runs"], "queued": p["runs"]},
    secondary=lambda s, p: {
        "queued ms/workflow": s["wall_s"] / s["units"] * 1e3,
        "plain ms/workflow": s["extra"]["plain_wall_s"] / s["units"] * 1e3,
    },
)

_ALL = (SEQ, SEQ_NOSYNC, _batch(1), _batch(4), FANOUT, EVENT, RESUME, MEMORY)
WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        *_ALL,
        *(_concurrency(c) for c in (1, 4, 16, 64)),
        AGENT,
        START,
        _tool("local"),
        _tool("bubblewrap"),
        API,
        STREAM,
        QUEUE,
    )
}
