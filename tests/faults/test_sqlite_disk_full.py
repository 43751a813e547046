"""SQLite on a disk that fills up mid-run: the step whose result cannot be committed fails with
a message naming the disk, the run is not failed but left to its (1 s) lease, nothing in the
file is corrupted, and once there is space again a worker resumes the run from that step."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from tests.faults.servers import SmallDisk
from tether import RunStatus, Settings, Tether


def test_a_full_disk_leaves_the_run_to_resume_when_space_returns(
    small_disk: SmallDisk, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = small_disk.path / ".tether"
    t = Tether(
        Settings(
            data_dir=data, checkpoint="sqlite", trace="memory",
            workflows=["tests.faults.flows"], poll_interval=0.02, lease_seconds=1.0,
        )
    )  # fmt: skip
    filler, log = small_disk.path / "filler", tmp_path / "steps.log"
    run_id = t.start(
        "fill_disk", {"filler": str(filler), "marker": str(tmp_path / "filled"), "log": str(log)}
    )
    worker = t.worker(1)
    thread = threading.Thread(target=worker.run)
    try:
        with caplog.at_level(logging.WARNING):
            thread.start()
            deadline = time.monotonic() + 20
            while "is full" not in caplog.text:
                assert time.monotonic() < deadline, caplog.text
                time.sleep(0.05)
            time.sleep(1.5)  # past the lease: the run is claimable, but the disk is still full
            assert t.status(run_id).status is RunStatus.RUNNING  # not failed: nothing to write
            filler.unlink()
            deadline = time.monotonic() + 20
            while t.status(run_id).status is not RunStatus.COMPLETED:
                assert time.monotonic() < deadline, t.status(run_id)
                time.sleep(0.05)
    finally:
        worker.stop()
        thread.join(15)
    message = next(r.getMessage() for r in caplog.records if "is full" in r.getMessage())
    assert f"the filesystem mounted at {small_disk.path}" in message
    assert "free space there and the run resumes" in message
    assert t.output(t.status(run_id)) == {"sizes": [5, 200_000, 4]}
    assert log.read_text().split() == ["first", "fill", "fill", "last"]  # from the step on
    t.close()
    with sqlite3.connect(data / "tether.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
