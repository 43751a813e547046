"""tether on Temporal (`TETHER_ENGINE=temporal`) against the same dev server as the raw
Temporal rows: `tether-on-temporal-activity` runs `bench_seq` (a named step function: a
regular activity), `tether-on-temporal-local` runs `bench_seq_closure` (a closure: a local
activity). Its ratio is over raw Temporal's matching row in the same repetition: what tether's
layers (I2's journal and runs index, the blob threshold, spans) add to Temporal's own
per-step cost; the goal is at most 1.10. As raw Temporal's worker is started before its timer,
one run of a single step starts this process's worker (and its pollers) before the timed run.

CPU figures are this process only (client and worker): the server's share is not counted.
"""

from __future__ import annotations

import uuid
from typing import Any

from bench import tether_wf
from bench.env import Env
from bench.measure import Sample, Timer
from bench.systems.tether_adapter import POLL_INTERVAL


def seq(env: Env, p: dict[str, Any]) -> Sample:
    from tether import Settings, Tether

    t = Tether(
        Settings(
            workflows=["bench.tether_wf"],
            data_dir=str(env.dir / "tether"),
            poll_interval=POLL_INTERVAL,
            sqlite_synchronous=env.sqlite_synchronous,
            engine="temporal",
            temporal_address=env.temporal_address,
            temporal_queue_prefix=f"bench-{uuid.uuid4().hex}",
        )
    )
    workflow = "bench_seq" if env.option == "activity" else "bench_seq_closure"
    # raw Temporal's worker is polling before its timer starts; so is this one after one run
    t.run(t.start(workflow, {"n": 1}))
    tether_wf.EXECUTED = 0
    with Timer() as timer:
        run = t.run(t.start(workflow, {"n": p["n"]}))
    journaled = sum(1 for e in t.journal(run.id) if e.kind == "step" and e.status == "ok")
    observed = {
        "status": run.status.value,
        "total": t.output(run),
        "journaled": journaled,
        "executed": tether_wf.EXECUTED,
    }
    t.close()
    return Sample(timer.wall_s, timer.cpu_s, p["n"], observed)
