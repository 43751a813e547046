"""Prune: old finished runs go with their blobs; anything still referenced stays."""

from __future__ import annotations

import time

import pytest

from tether import RunStatus, Tether


def test_prune_removes_old_finished_runs_and_only_their_blobs(tether: Tether) -> None:
    old = tether.run(tether.start("blob", {"size": 300 * 1024}))
    live = tether.start("approval", {"ticket": "keep-me"})  # parked, not finished
    kept_blob = tether.run(tether.start("blob", {"size": 301 * 1024}))
    assert len(tether.codec.blobs.addresses()) == 2  # type: ignore[union-attr]
    cutoff = kept_blob.updated_at - 1e-6
    report = tether.prune(finished_before=cutoff)
    assert (report.runs, report.blobs) == (1, 1) and report.bytes_freed >= 300 * 1024
    assert report.journal_entries == 1
    assert {r.id for r in tether.list()} == {live, kept_blob.id}
    assert tether.output(tether.status(kept_blob.id)) == {"total": 301 * 1024}
    with pytest.raises(Exception, match=old.id):
        tether.status(old.id)


def test_prune_spares_unfinished_runs_however_old(tether: Tether) -> None:
    parked = tether.start("approval", {"ticket": "old-but-waiting"})
    report = tether.prune(finished_before=time.time() + 3600)
    assert report.runs == 0
    assert tether.status(parked).status is RunStatus.PENDING


def test_a_5mb_result_round_trips_is_stored_once_for_two_runs_and_pruned(tether: Tether) -> None:
    size = 5 * 1024 * 1024
    first = tether.run(tether.start("blob", {"size": size}))
    second = tether.run(tether.start("blob", {"size": size}))
    assert tether.output(first) == tether.output(second) == {"total": size}
    stored = tether.blobs.addresses()
    assert len(stored) == 1 and stored[0][2] == size + 2  # the JSON string, once
    report = tether.prune(finished_before=time.time() + 1)
    assert (report.runs, report.blobs) == (2, 1) and report.bytes_freed == size + 2
    assert tether.blobs.addresses() == []
