"""The data directory's writability check, as several workers starting at once run it."""

from __future__ import annotations

import threading
from pathlib import Path

from tether import Settings


def test_workers_starting_together_all_find_the_data_directory_writable(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def check() -> None:
        start.wait()
        for _ in range(200):
            try:
                settings.ensure_data_dir()
            except BaseException as e:
                errors.append(e)
                return

    threads = [threading.Thread(target=check) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert list((tmp_path / "data").iterdir()) == []  # the probe leaves nothing behind
