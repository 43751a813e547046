"""Checkpoint and task ids as the SQL thread tables store them: a uuid's text (LangGraph's ids,
uuid6 and uuid5) as its 16 bytes, not its 36 characters, in the order its text sorts (hex
digits sort as the bytes they spell). A 200-turn chat keys 1,200 rows by two ids each: 48 KB of
text, 19 KB of bytes.

Any other id is its UTF-8, with a NUL added when that would be 16 bytes long or end in a NUL,
so the two forms never meet. Ids of one form keep their text's order among themselves; a thread
mixing uuids with other ids would sort the two forms apart (LangGraph names every checkpoint of
a thread one way)."""

from __future__ import annotations

import re
import uuid

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def id_key(text: str) -> bytes:
    if _UUID.fullmatch(text):
        return uuid.UUID(text).bytes
    data = text.encode()
    return data + b"\0" if len(data) == 16 or data.endswith(b"\0") else data


def id_text(key: bytes) -> str:
    if len(key) == 16:
        return str(uuid.UUID(bytes=key))
    return (key[:-1] if key.endswith(b"\0") else key).decode()
