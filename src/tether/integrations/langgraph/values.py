"""Channel values stored once by content, so checkpoints stop growing with each copy of a list.

A LangGraph checkpoint carries every channel's whole value: a conversation's message list is
copied into each checkpoint, and a 200-turn thread holds its first message some 600 times
(langgraph#7714). Here each channel value, and each item of a list value (a message), is a
thread blob addressed by the hash of its serialised form; a pending write's value too, so the
message a node writes is the very blob the next checkpoint's list refers to.

A list is a blob whose refs are chunks of its item hashes, grouped by the binary decomposition
of its length (13 items: chunks of 8, 4 and 1). Appending an item leaves every chunk but the
last few as they were and adds one of the size of the new length's lowest set bit, so n
appends store O(n log n) hashes rather than O(n^2) items, and a checkpoint refers to each
channel's value by one hash. A checkpoint is read back with three lookups: its values, the
lists' chunks, the chunks' items.

A list that extends one this saver packed recently by a few items is stored as that list's
hash and the new items (`~more`): a conversation's checkpoint then adds two hashes, not a list
of its chunks and a new chunk (a 200-turn chat's lists took 260 bytes a checkpoint, now 66).
Such a chain is at most `_DEPTH` long, then the list is chunked again, so a read stays within
`_DEPTH` more lookups; the sweep follows a chain's refs as it follows chunks.

A message with an id is stored as its id and a reference to the message without it: a node
may write a message with no id (a question, a model's answer) and LangGraph's reducer gives it
one afterwards, so the pending write and every later checkpoint's list share the one body
rather than storing the message twice.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import uuid
import zlib
from collections import OrderedDict
from collections.abc import Hashable, Iterator, Sequence
from typing import Any

from langchain_core.messages import BaseMessage
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from tether.foundation.checkpoint.contract import ThreadBlob, ThreadCheckpoints

REF = "ref"  # a write that refers to its value: the one blob in its refs
ITEMS = "[]"  # a write of a short list: its refs are the list's items
# A checkpoint's type: its body is its serialiser's type name, its metadata's JSON and the
# checkpoint without its id (the row's), NUL-separated, with each channel value an index into
# the row's refs (so a hash is stored once, in the refs), deflated raw (no zlib header and
# checksum: 6 bytes a checkpoint) against `_BODY`
PACKED = "zi"
# A checkpoint's type prefix, as written before PACKED (read still): its channel values are
# hashes, it is compressed against `_ZDICT` and its metadata is in its row
ZREFS = "zrefs+"
# What a serialised checkpoint repeats, given to zlib as a preset dictionary: a checkpoint is a
# few hundred bytes, too short for zlib to learn its own keys and digit runs (measured on a
# chat graph's checkpoints: 297 bytes a checkpoint with plain zlib, 192 with this)
_ZDICT = (
    b"\xa9__input__\x80\xa9__start__\x81\xa9__start__\xa8messages\xafbranch:to:agent\xa5agent"
    b"\xb0updated_channels\x91\xadversions_seen\x83\xb0channel_versions\x83\xaechannel_values"
    b"\x81\xa2ts\xd9 2026-01-01T00:00:00.000000+00:00\xa2id\xd9$1f1ec56a-fdf2-67a3-8058-"
    b"\x87\xa1v\x04\xd930000000000000000000000000000000.0.\xd940000000000000000000000000000000.0."
)
_VERSION = [300, 0.5]  # a version as stamps.py keeps it: its counter and tie-break
_SEEN = {"__input__": {}, "__start__": {"__start__": _VERSION},
         "agent": {"branch:to:agent": _VERSION}}  # fmt: skip
_BODY = b"\0".join([
    b'msgpack', b'{"source": "input", "step": -1, "parents": {}}',
    b'msgpack', b'{"source": "loop", "step": 1, "parents": {}}',
    *(JsonPlusSerializer().dumps_typed({
        "v": 4, "ts": -30, "channel_values": values,
        "channel_versions": {"__start__": _VERSION, "messages": _VERSION,
                             "branch:to:agent": _VERSION},
        "versions_seen": _SEEN, "updated_channels": updated,
    })[1] for values, updated in [
        ({"messages": 0, "branch:to:agent": 1}, ["branch:to:agent", "messages"]),
        ({"messages": 0, "__start__": {"messages": [1]}}, ["__start__"]),
        ({"messages": 0}, ["messages"]),
    ])
])  # fmt: skip
# Blob types of the shapes (short: a long conversation stores a few thousand of them)
_DICT = "~dict"  # a dict with str keys: its data the keys (JSON), its refs the values
_LIST = "~list"  # a list: its refs are its items, or chunks of them, in order
_CHUNK = "~chunk"  # a piece of a list: its refs are the item hashes, in order
_ID = "~id"  # a message with an id: its data the id, its one ref the message without it
# as _ID, for an id holding a uuid's text (as LangGraph and chat models give them): its data the
# length of the text before the uuid, that text, the uuid's 16 bytes, then the text after it
_UID = "~uid"
_MORE = "~more"  # a list extending another: its refs that list's hash, then the new items
_SHAPES = (_DICT, _LIST, _CHUNK, _ID, _UID, _MORE)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_REMEMBERED = 4096  # channel versions whose hash a saver remembers
_LISTS = 256  # lists a saver remembers packed, to store the next one as an extension
_DEPTH = 8  # extensions of extensions before a list is chunked again: lookups a read may add
_TAIL = 4  # items a list may add to a remembered one and still be stored as its extension
_MESSAGE_BYTES = 16 << 20  # bytes of messages a saver remembers split (each held twice)
# A pending write's value this short is kept in its row: a task's result or a branch marker is
# smaller than the hash and blob row that would share it, and a put of writes so stays one
# statement (a sequential entrypoint's every step is one such write)
_INLINE = 64


def _address(type_: str, data: bytes) -> str:
    """120 bits of blake2b, in 20 characters (the SQL tables keep their 15 bytes,
    checkpoint/thread_hashes.py): hashes are most of what a chunk stores."""
    digest = hashlib.blake2b(type_.encode() + b"\0" + data, digest_size=15).digest()
    return base64.urlsafe_b64encode(digest).decode()


def decompress(data: bytes) -> bytes:
    unpacker = zlib.decompressobj(zdict=_ZDICT)
    return unpacker.decompress(data) + unpacker.flush()


def deflate(data: bytes) -> bytes:
    """A PACKED checkpoint's body, raw-deflated against what checkpoints repeat."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15, zdict=_BODY)
    return packer.compress(data) + packer.flush()


def inflate(data: bytes) -> bytes:
    unpacker = zlib.decompressobj(-15, zdict=_BODY)
    return unpacker.decompress(data) + unpacker.flush()


def _chunk_sizes(n: int) -> list[int]:
    """The binary decomposition of n, largest first: 13 -> [8, 4, 1]."""
    return [1 << bit for bit in range(n.bit_length() - 1, -1, -1) if n >> bit & 1]


class Values:
    """Packs values into blobs and reads them back by hash, for one saver."""

    def __init__(self, serde: SerializerProtocol, store: ThreadCheckpoints) -> None:
        self.serde, self.store = serde, store
        self._known: OrderedDict[Hashable, Any] = OrderedDict()  # codes this process stored
        # a message with an id, as serialised, to its two blobs: each put of a conversation
        # packs every message again, and splitting off the id (a copy of the message, a second
        # serialisation, two hashes) was three quarters of a put's CPU (cProfile, 200 turns)
        self._messages: OrderedDict[tuple[str, bytes], tuple[ThreadBlob, ThreadBlob]] = (
            OrderedDict()
        )
        self._message_bytes = 0
        # a packed list's item hashes to its hash, its chain's length and the blobs it is
        # (each put stores them again, so a list a sweep took meanwhile comes back whole)
        self._lists: OrderedDict[tuple[str, ...], tuple[str, int, tuple[ThreadBlob, ...]]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    def known(self, key: Hashable) -> Any:
        """The code (`code`) remembered under `key` (a thread's channel at a version), if
        recent, else None."""
        with self._lock:
            return self._known.get(key)

    def remember(self, key: Hashable, code: Any) -> None:
        with self._lock:
            self._known[key] = code
            self._known.move_to_end(key)
            if len(self._known) > _REMEMBERED:
                self._known.popitem(last=False)

    def _put(
        self, blobs: dict[str, ThreadBlob], type_: str, data: bytes, refs: tuple[str, ...] = ()
    ) -> str:
        h = _address(type_, data + b"\0" + " ".join(refs).encode())
        blobs.setdefault(h, ThreadBlob(h, type_, data, refs))
        return h

    def pack(self, value: Any, blobs: dict[str, ThreadBlob]) -> str:
        """The hash of `value`, its blobs added to `blobs`. A plain dict with str keys is taken
        apart into its values and a plain non-empty list into its items, each item whole (a
        message is one blob wherever it appears); a subclass of either is stored whole, or it
        would come back as the plain type."""
        if type(value) is dict and all(type(k) is str for k in value):
            refs = tuple(self.pack(v, blobs) for v in value.values())
            return self._put(blobs, _DICT, json.dumps(list(value)).encode(), refs)
        if type(value) is not list or not value:
            return self._item(value, blobs)
        items = tuple(self._item(v, blobs) for v in value)
        h, depth, own = self._list(items)
        for b in own:
            blobs.setdefault(b.hash, b)
        with self._lock:
            self._lists[items] = (h, depth, own)
            self._lists.move_to_end(items)
            if len(self._lists) > _LISTS:
                self._lists.popitem(last=False)
        return h

    def _list(self, items: tuple[str, ...]) -> tuple[str, int, tuple[ThreadBlob, ...]]:
        """A list of these item hashes: its hash, its chain's length and its shape's blobs,
        an extension of a remembered list where one is near enough."""
        with self._lock:
            known = self._lists.get(items)
            if known is not None:
                return known
            bases = [self._lists.get(items[:-added])
                     for added in range(1, min(_TAIL, len(items) - 1) + 1)]  # fmt: skip
        blobs: dict[str, ThreadBlob] = {}
        near = [(base[1], added, base) for added, base in enumerate(bases, 1)
                if base is not None and base[1] < _DEPTH]  # fmt: skip
        if near:
            _, added, base = min(near, key=lambda n: n[:2])
            h = self._put(blobs, _MORE, b"", (base[0], *items[-added:]))
            return h, base[1] + 1, (blobs[h], *base[2])
        parts, start = [], 0
        for size in _chunk_sizes(len(items)):
            part = items[start : start + size]
            parts.append(part[0] if size == 1 else self._put(blobs, _CHUNK, b"", part))
            start += size
        h = self._put(blobs, _LIST, b"", tuple(parts))
        return h, 0, tuple(blobs.values())

    def code(self, value: Any, blobs: dict[str, ThreadBlob]) -> Any:
        """A channel value as a checkpoint's body keeps it: a short plain dict as a dict of
        codes, a short plain list as the list of its items' hashes, anything else the hash of
        its blob. A blob of either (an input's `{"messages": [question]}`) would cost a hash, a
        row and a ref more than the few bytes it holds."""
        if type(value) is dict and len(value) <= _TAIL and all(type(k) is str for k in value):
            return {k: self.code(v, blobs) for k, v in value.items()}
        if type(value) is list and len(value) <= _TAIL:
            return [self._item(v, blobs) for v in value]
        return self.pack(value, blobs)

    def write(self, value: Any, blobs: dict[str, ThreadBlob]) -> tuple[str, bytes, tuple[str, ...]]:
        """A pending write's (type, value, refs): its value in the row when short, a short
        list's items in its refs (ITEMS: a node's new message is one ref, not a list's blob
        too), else REF and the value's hash, its blobs added to `blobs`."""
        if type(value) is list and 0 < len(value) <= _TAIL:
            return ITEMS, b"", tuple(self._item(v, blobs) for v in value)
        if type(value) in (list, dict) or isinstance(value, BaseMessage):
            return REF, b"", (self.pack(value, blobs),)
        type_, data = self.serde.dumps_typed(value)
        if len(data) <= _INLINE:
            return type_, data, ()
        return REF, b"", (self._put(blobs, type_, data),)

    def _item(self, value: Any, blobs: dict[str, ThreadBlob]) -> str:
        typed = self.serde.dumps_typed(value)
        if not isinstance(value, BaseMessage) or not isinstance(value.id, str):
            return self._put(blobs, *typed)
        with self._lock:
            split = self._messages.get(typed)
            if split is not None:
                self._messages.move_to_end(typed)
        if split is None:
            parts: dict[str, ThreadBlob] = {}
            body = self._put(parts, *self.serde.dumps_typed(value.model_copy(update={"id": None})))
            wrapped = self._put(parts, *_id_data(value.id), (body,))
            split = (parts[body], parts[wrapped])
            with self._lock:
                if typed not in self._messages:
                    self._messages[typed] = split
                    self._message_bytes += len(typed[1]) + len(split[0].value)
                while self._message_bytes > _MESSAGE_BYTES:
                    (_, data), (gone, _) = self._messages.popitem(last=False)
                    self._message_bytes -= len(data) + len(gone.value)
        for b in split:
            blobs.setdefault(b.hash, b)
        return split[1].hash

    def unpack(self, hashes: Sequence[str]) -> list[Any]:
        """The values of these hashes, in their order: one lookup per level of nesting (a
        checkpoint's messages: the list, its chunks, their items)."""
        found: dict[str, ThreadBlob] = {}
        wanted = list(hashes)
        while wanted:
            found |= self.store.thread_blobs(wanted)
            wanted = [r for h in wanted if found[h].type in _SHAPES for r in found[h].refs]
            wanted = [r for r in dict.fromkeys(wanted) if r not in found]

        def load(h: str) -> Any:
            b = found[h]
            if b.type == _DICT:
                return dict(zip(json.loads(b.value), map(load, b.refs), strict=True))
            if b.type == _LIST:
                return [load(i) for p in b.refs for i in _items(found[p], p)]
            if b.type == _MORE:
                return [*load(b.refs[0]), *map(load, b.refs[1:])]
            if b.type in (_ID, _UID):
                return load(b.refs[0]).model_copy(update={"id": _id_text(b.type, b.value)})
            return self.serde.loads_typed((b.type, b.value))

        return [load(h) for h in hashes]


def leaves(code: Any) -> list[Any]:
    """The refs a checkpoint's channel code holds (Values.code), in the order `rebuilt` takes
    their values."""
    if type(code) is dict:
        return [leaf for c in code.values() for leaf in leaves(c)]
    if type(code) is list:
        return list(code)
    return [code]


def rebuilt(code: Any, values: Iterator[Any]) -> Any:
    """A channel's value from its code and the values of its `leaves`, in order."""
    if type(code) is dict:
        return {k: rebuilt(c, values) for k, c in code.items()}
    if type(code) is list:
        return [next(values) for _ in code]
    return next(values)


def _id_data(id_: str) -> tuple[str, bytes]:
    """A message id's blob type and data: a uuid in it as its 16 bytes, not its 36 characters."""
    found = _UUID.search(id_)
    before = id_[: found.start()].encode() if found else b""
    if found is None or len(before) > 255:
        return _ID, id_.encode()
    after = id_[found.end() :].encode()
    return _UID, bytes([len(before)]) + before + uuid.UUID(found.group()).bytes + after


def _id_text(type_: str, data: bytes) -> str:
    if type_ == _ID:
        return data.decode()
    n = data[0]
    h = data[1 + n : 17 + n].hex()  # as str(uuid.UUID(bytes=...)), in a third of its time
    middle = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    return data[1 : 1 + n].decode() + middle + data[17 + n :].decode()


def _items(part: ThreadBlob, h: str) -> tuple[str, ...]:
    """A list's part: a chunk's items, or the one item it is."""
    return part.refs if part.type == _CHUNK else (h,)
