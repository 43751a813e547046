"""Checkpoint and task ids as the SQL thread tables store them: a uuid's text (LangGraph's ids,
uuid6 and uuid5) as its 16 bytes, not its 36 characters, in the order its text sorts (hex
digits sort as the bytes they spell). A 200-turn chat keys 1,200 rows by two ids each: 48 KB of
text, 19 KB of bytes.

Any other id is its UTF-8, with a NUL added when that would be 16 bytes long or end in a NUL,
so the two forms never meet. Ids of one form keep their text's order among themselves; a thread
mixing uuids with other ids would sort the two forms apart (LangGraph names every checkpoint of
a thread one way)."""

from __future__ import annotations


def _text(raw: bytes) -> str:
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def id_key(text: str) -> bytes:
    # bytes.fromhex: a fifth of uuid.UUID's time. Only the canonical form (the one rebuilt on
    # read) is taken as a uuid: dashes where `_text` puts them, 32 hex digits (fromhex skips
    # spaces, which would leave fewer than 16 bytes) and no capital letter
    if len(text) == 36 and text[8] == text[13] == text[18] == text[23] == "-":
        try:
            raw = bytes.fromhex(text.replace("-", ""))
        except ValueError:
            raw = b""
        if len(raw) == 16 and text == text.lower():
            return raw
    return utf8_key(text, 16)


def id_text(key: bytes) -> str:
    if len(key) == 16:
        return _text(key)
    return utf8_text(key)


def utf8_key(text: str, packed: int) -> bytes:
    """Text not in a packed form, as its UTF-8, with a NUL added when that would be `packed`
    bytes long or end in a NUL: the two forms never meet (ids here, hashes in
    thread_hashes.py)."""
    data = text.encode()
    return data + b"\0" if len(data) == packed or data.endswith(b"\0") else data


def utf8_text(key: bytes) -> str:
    """What `utf8_key` stored."""
    return (key[:-1] if key.endswith(b"\0") else key).decode()
