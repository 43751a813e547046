"""A checkpoint's timestamp and channel versions in fewer bytes, as a packed body keeps them.

Each checkpoint carries its time as ISO text and every channel's version as 32 zero-padded
digits and a random tie-break's digits (`get_next_version`, as SqliteSaver writes them). Most
of that is not information: the time is within microseconds of the one in the checkpoint's
uuid6 id, and the tie-break is a float whose 17-odd digits deflate to a byte each (the body is
too short for zlib to build its own Huffman codes). So the time is kept as microseconds after
the id's, and a version as its counter and float: 200 turns of 300 B store 19 KB less.

Each is kept so only when the text rebuilt from it is the text given; anything else stays as
it was, so a body holds either form and a read tells them apart by type: LangGraph's
`Checkpoint` types its time as str and a version as str, int or float, so an int time or a
list version is always a short form."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta
from typing import Any

_VERSION = re.compile(r"([0-9]{32})\.(.+)")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_UUID_EPOCH = 0x01B21DD213814000  # the uuid epoch (1582-10-15) in 100 ns after the Unix one


def compact(checkpoint: dict[str, Any], checkpoint_id: str) -> dict[str, Any]:
    """The checkpoint with its time and versions in their short forms where they rebuild."""
    out = dict(checkpoint)
    if "ts" in out:
        out["ts"] = _ts_code(out["ts"], checkpoint_id)
    if isinstance(out.get("channel_versions"), dict):
        out["channel_versions"] = {k: _version_code(v) for k, v in out["channel_versions"].items()}
    if isinstance(out.get("versions_seen"), dict):
        out["versions_seen"] = {
            node: {k: _version_code(v) for k, v in seen.items()} if isinstance(seen, dict) else seen
            for node, seen in out["versions_seen"].items()
        }
    return out


def expand(checkpoint: dict[str, Any], checkpoint_id: str) -> None:
    """Rebuild, in place, what `compact` shortened."""
    if type(checkpoint.get("ts")) is int:
        checkpoint["ts"] = _ts(checkpoint["ts"], _id_micros(checkpoint_id) or 0)
    if isinstance(checkpoint.get("channel_versions"), dict):
        versions = checkpoint["channel_versions"]
        checkpoint["channel_versions"] = {k: _version(v) for k, v in versions.items()}
    if isinstance(checkpoint.get("versions_seen"), dict):
        checkpoint["versions_seen"] = {
            node: {k: _version(v) for k, v in seen.items()} if isinstance(seen, dict) else seen
            for node, seen in checkpoint["versions_seen"].items()
        }


def _id_micros(checkpoint_id: str) -> int | None:
    """The time in a uuid6 id (LangGraph's checkpoint ids), in microseconds since 1970."""
    if len(checkpoint_id) != 36 or checkpoint_id[14] != "6":
        return None
    try:
        at = int(checkpoint_id[:8] + checkpoint_id[9:13], 16) << 12
        at |= int(checkpoint_id[15:18], 16)
    except ValueError:
        return None
    return (at - _UUID_EPOCH) // 10


def _ts(offset: int, base: int) -> str:
    return (_EPOCH + (base + offset) * _MICROSECOND).isoformat()


def _ts_code(ts: Any, checkpoint_id: str) -> Any:
    base = _id_micros(checkpoint_id)
    if base is None or not isinstance(ts, str):
        return ts
    try:
        at = datetime.fromisoformat(ts)
    except ValueError:
        return ts
    if at.tzinfo is None:
        return ts
    offset = (at - _EPOCH) // _MICROSECOND - base
    return offset if _ts(offset, base) == ts else ts


def _version(code: Any) -> Any:
    if type(code) is list:
        return f"{code[0]:032}.{code[1]:016}"
    return code


def _version_code(version: Any) -> Any:
    return _text_version_code(version) if isinstance(version, str) else version


# a version recurs in the checkpoints after it (channel_versions, then versions_seen) until
# its channel changes: remembered, a put's five versions took 20 of compact's 33 us
@functools.lru_cache(maxsize=4096)
def _text_version_code(version: str) -> Any:
    found = _VERSION.fullmatch(version)
    if found is None:
        return version
    try:
        code = [int(found[1]), float(found[2])]
    except ValueError:
        return version
    return code if _version(code) == version else version
