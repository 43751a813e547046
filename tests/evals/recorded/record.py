"""Regenerates tests/evals/recorded/runs.db, the recording the replay gate reads in CI:

    .venv/bin/python -m tests.evals.recorded.record

Runs of both reference agents, as production would hold them (support tickets that finished,
outages parked waiting for a person's approval, outages a person approved, research reports),
interleaved with runs of `ordered@1.0.0`: an OLDER workflow version than the one installed when
the gate runs (tests/evals/flows_next.py's 1.1.0, which resumes 1.0.*). Written in a throwaway
data directory, then exported with `tether export`'s own code.
"""

from __future__ import annotations

import sys
import tempfile
import threading
from pathlib import Path

from tether import Settings, Tether
from tether.evals.recording import export_runs
from tether.evals.replay import LiveRuns
from tether.foundation.identity.contract import Identity

HERE = Path(__file__).parent
RECORDING = HERE / "runs.db"
WORKFLOWS = ["workflows.support_triage", "workflows.research_report", "tests.evals.flows"]
TICKETS = [
    "I was charged twice for my subscription this month, please refund",
    "The export button crashes the app with an error when I click it",
    "I cannot log in to my account, password reset email never arrives",
    "Please add a dark mode to the dashboard",
    "The whole site is down, every page returns 500 errors for all customers",
]


LEAD = Identity(subject="dana", roles=("support-leads",))


def _until_parked(t: Tether, run_id: str) -> str:
    """Run it here until it finishes or parks: a wait for a person detaches, as a worker does."""
    stop = threading.Event()
    return t.run(run_id, stop=stop, on_wait=lambda _: stop.set()).status.value


def record(t: Tether) -> None:
    for n in range(20):
        text = TICKETS[n % len(TICKETS)]
        run_id = t.start("support_triage", {"ticket_id": f"T-{n}", "text": text})
        if _until_parked(t, run_id) == "waiting" and n % 2 == 0:  # odd outages wait on
            [request] = t.approvals(state="pending", run_id=run_id)
            t.decide(request.id, "approved", identity=LEAD, reason="a real outage")
            t.run(run_id)
        ordered = t.start("ordered@1.0.0", {"n": n})
        t.run(ordered)
        if n % 4 == 0:
            topic = ["durable agents", "tool sandboxes", "model routing", "budgets", "replay"]
            report = {"topic": topic[n // 4], "questions": 1, "review_pause_seconds": 0.0}
            t.run(t.start("research_report", report))
        t.run(t.start("ordered@1.0.0", {"n": 100 + n}))


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="tether-record-") as tmp:
        settings = Settings(data_dir=Path(tmp), trace="none", poll_interval=0.02,
                            workflows=WORKFLOWS)  # fmt: skip
        with Tether(settings) as t:
            record(t)
            RECORDING.unlink(missing_ok=True)
            done = export_runs(t, LiveRuns(t).runs(1000), RECORDING)
    print(f"{RECORDING}: {done.runs} runs, {done.entries} entries, {done.tool_calls} tool calls, "
          f"{RECORDING.stat().st_size // 1024} KiB")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
