"""Blob store contract, run against every backend in `tether.blobs`: a value is found by the
hash of its bytes, stored once however often it is written, and removed only when asked, with
every blob listed for the sweep that decides what to remove."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.contract.backends import environment, installed
from tether.foundation.blobs.contract import BlobStore
from tether.foundation.loader import open_backend

PAYLOAD = b"x" * 300_000  # over the default inline threshold, as the blobs the codec writes


@pytest.fixture(params=installed("blobs"))
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    with environment(request.param, "blobs", tmp_path) as (settings, options):
        yield open_backend("blobs", request.param, BlobStore, settings, **options)


def test_a_blob_reads_back_by_the_sha256_of_its_bytes(blobs: BlobStore) -> None:
    address = blobs.put(PAYLOAD)
    assert address == "sha256:" + hashlib.sha256(PAYLOAD).hexdigest()
    assert blobs.get(address) == PAYLOAD


def test_the_same_bytes_written_twice_are_stored_once(blobs: BlobStore) -> None:
    assert blobs.put(b"one") == blobs.put(b"one")
    assert [a for a, _, _ in blobs.addresses()] == [blobs.put(b"one")]


def test_a_missing_or_malformed_address_raises_key_error(blobs: BlobStore) -> None:
    absent = "sha256:" + hashlib.sha256(b"never stored").hexdigest()
    for address in (absent, "sha256:../../etc/passwd", "md5:abc"):
        with pytest.raises(KeyError):
            blobs.get(address)


def test_addresses_list_every_blob_with_its_age_and_size(blobs: BlobStore) -> None:
    before = time.time() - 1
    stored = {blobs.put(b"a" * n): n for n in (1, 10, 100)}
    listed = {address: (created, size) for address, created, size in blobs.addresses()}
    assert listed.keys() == stored.keys()
    for address, (created, size) in listed.items():
        assert size == stored[address] and before <= created <= time.time() + 1


def test_delete_frees_the_blob_and_reports_its_size_once(blobs: BlobStore) -> None:
    keep, drop = blobs.put(b"keep"), blobs.put(b"drop me")
    assert blobs.delete(drop) == len(b"drop me")
    assert blobs.delete(drop) == 0
    with pytest.raises(KeyError):
        blobs.get(drop)
    assert [a for a, _, _ in blobs.addresses()] == [keep]
