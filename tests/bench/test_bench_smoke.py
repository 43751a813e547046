"""`make bench` end to end at toy size: tether and the floor on workload 1 write a JSON result
and a markdown table with the fields the report promises. No timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_harness_writes_checked_results_for_tether_and_the_floor(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            "--quick",
            "--reps",
            "1",
            "--workloads",
            "seq",
            "--systems",
            "tether-sqlite,floor-sqlite",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr

    [result] = tmp_path.glob("*.json")
    doc = json.loads(result.read_text())
    assert doc["machine"]["cores"] >= 1 and doc["machine"]["python"]
    seq = doc["workloads"]["seq"]
    tether, floor = seq["systems"]["tether-sqlite"], seq["systems"]["floor-sqlite"]
    for entry in (tether, floor):
        assert entry["failures"] == []
        assert len(entry["samples"]) == 1
        assert entry["min"] <= entry["median"] <= entry["max"]
        assert entry["median"] > 0
    assert floor["ratio"] == tether["median"] / floor["median"]

    table = result.with_suffix(".md").read_text()
    assert "| tether-sqlite |" in table and "| floor-sqlite |" in table
    assert "tether/peer" in table and "cores" in table
    assert "- **floor-sqlite**: one connection in autocommit" in table  # each one's configuration
