"""Thread blob hashes as the SQL thread tables store them: a hash in the form the LangGraph
saver writes (20 base64url characters, 120 bits) as its 15 bytes, and a row's refs, when all
are in that form, as their bytes end to end. Hashes and refs are most of what a long chat's
list shapes store: 200 turns of 300 B held 85 KB of refs as text, about 60 KB as bytes.

Any other hash (one stored before, or a test's) is its UTF-8, with a NUL added when that would
be 15 bytes long or end in a NUL, so the two forms never meet. Refs holding any other hash are
their space-separated text, with a space added when that would be a multiple of 15 bytes long:
refs of a length divisible by 15 are bytes, any other are text."""

from __future__ import annotations

import binascii
import re
from collections.abc import Sequence

from tether.foundation.checkpoint.thread_ids import utf8_key, utf8_text

_SIZE = 15  # bytes of a hash in the saver's form
_FORM = re.compile(r"[A-Za-z0-9_-]{20}")
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")


def _encoded(key: bytes) -> str:
    # binascii, not base64.urlsafe_b64encode: a read decodes a ref per blob row, and the
    # base64 module's wrappers took half of a 200-turn chat's refs decoding
    return binascii.b2a_base64(key, newline=False).translate(_TO_URLSAFE).decode()


def _decoded(text: str) -> bytes:
    return binascii.a2b_base64(text.encode().translate(_FROM_URLSAFE))


def hash_key(text: str) -> bytes:
    if _FORM.fullmatch(text):
        return _decoded(text)
    return utf8_key(text, _SIZE)


def hash_text(key: bytes) -> str:
    if len(key) == _SIZE:
        return _encoded(key)
    return utf8_text(key)


def refs_key(refs: Sequence[str]) -> bytes:
    if not refs:  # most write rows: their value is in the row
        return b""
    if all(_FORM.fullmatch(r) for r in refs):
        # 20 characters are 15 bytes exactly: the hashes decode as one string
        return _decoded("".join(refs))
    text = " ".join(refs).encode()
    return text + b" " if len(text) % _SIZE == 0 else text


def refs_text(key: bytes) -> tuple[str, ...]:
    if len(key) % _SIZE:
        return tuple(key.decode().split())
    if len(key) == _SIZE:  # most rows: a message's id refers to its body
        return (_encoded(key),)
    text = _encoded(key)
    return tuple(text[i : i + 20] for i in range(0, len(text), 20))
