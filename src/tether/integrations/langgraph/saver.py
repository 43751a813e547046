"""TetherSaver: LangGraph's `BaseCheckpointSaver` over I2's thread checkpoints.

It maps the saver's calls onto `ThreadCheckpoints` (checkpoint/contract.py) and holds no SQL:
memory, SQLite and PostgreSQL store the rows in their own tables. What it stores and returns is
what LangGraph's `SqliteSaver` does (the same serialiser, metadata as JSON, special writes
replacing and plain writes kept on a second `put_writes`), so a graph behaves the same on both.

Channel values and pending writes are stored once by content (values.py): a long conversation's
checkpoints refer to its messages instead of copying the list into each; a write's short value
(a task's result, a branch marker) stays in its row.

LangGraph's saver API carries no graph version, so the saver is told one: every checkpoint is
written under `name@version`, and a thread whose newest root checkpoint was written by another
version is refused (`GraphVersionMismatch`) unless `resumes` covers that version, the same rule
as tether's workflows.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import replace
from fnmatch import fnmatchcase
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from tether.client import Tether
from tether.errors import ConfigurationError, GraphVersionMismatch
from tether.foundation.checkpoint.contract import (
    ThreadBlob,
    ThreadCheckpoint,
    ThreadCheckpoints,
    ThreadQuery,
    ThreadWrite,
)
from tether.integrations.langgraph.stamps import compact, expand
from tether.integrations.langgraph.values import (
    ITEMS,
    PACKED,
    REF,
    ZREFS,
    Values,
    decompress,
    deflate,
    inflate,
    leaves,
    rebuilt,
)

# A task path's common heads, stored as one character each (a write row's longest column was
# its task path, "~__pregel_pull, agent"); a path stored whole starts with "~" or is empty
_PATH_HEADS = {"~__pregel_pull, ": "\x01", "~__pregel_push, ": "\x02"}
_HEAD_PATHS = {short: head for head, short in _PATH_HEADS.items()}


def _stored_path(task_path: str) -> str:
    for head, short in _PATH_HEADS.items():
        if task_path.startswith(head):
            return short + task_path.removeprefix(head)
    return task_path


def _task_path(stored: str) -> str:
    head = _HEAD_PATHS.get(stored[:1])
    return stored if head is None else head + stored[1:]


def _graph_id(graph: str) -> tuple[str, str]:
    name, at, version = graph.partition("@")
    if not name or not at or not version:
        raise ConfigurationError(
            f"graph {graph!r} has no version: name it as name@X.Y.Z, e.g. 'support@1.0.0'"
        )
    return name, version


class TetherSaver(BaseCheckpointSaver[str]):
    """`TetherSaver(tether, graph="support@1.2.0", resumes=["1.1.*"])`; `tether` may also be an
    I2 backend itself (anything implementing ThreadCheckpoints)."""

    def __init__(
        self,
        tether: Tether | ThreadCheckpoints,
        *,
        graph: str,
        resumes: Sequence[str] = (),
        serde: SerializerProtocol | None = None,
    ) -> None:
        super().__init__(serde=serde)
        store = tether.checkpointer if isinstance(tether, Tether) else tether
        if not isinstance(store, ThreadCheckpoints):
            raise ConfigurationError(
                f"the checkpoint backend {type(store).__name__} stores no thread checkpoints: "
                "use memory, sqlite or postgres"
            )
        self.store: ThreadCheckpoints = store
        self.name, self.version = _graph_id(graph)
        self.graph, self.resumes = graph, tuple(resumes)
        self.values = Values(self.serde, store)

    # -- reading ------------------------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        conf = config["configurable"]
        thread_id, ns = str(conf["thread_id"]), conf.get("checkpoint_ns", "")
        row = self.store.thread_checkpoint(thread_id, ns, get_checkpoint_id(config))
        if row is None:
            return None
        self._check_pinned(thread_id, row.graph)
        return self._tuple(row)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        conf = (config or {}).get("configurable", {})
        query = ThreadQuery(
            thread_id=str(conf["thread_id"]) if conf.get("thread_id") is not None else None,
            ns=conf.get("checkpoint_ns"),
            checkpoint_id=conf.get("checkpoint_id"),
            before=get_checkpoint_id(before) if before else None,
            limit=None if filter else limit,  # the metadata filter is applied here, then limit
        )
        yielded = 0
        for row in self.store.thread_checkpoints(query):
            if limit is not None and yielded >= limit:
                return
            if filter:
                metadata = self._opened(row)[1]
                if any(metadata.get(k) != v for k, v in filter.items()):
                    continue
            yielded += 1
            yield self._tuple(row)

    # -- writing ------------------------------------------------------------------------

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        conf = config["configurable"]
        thread_id, ns = str(conf["thread_id"]), conf.get("checkpoint_ns", "")
        blobs: dict[str, ThreadBlob] = {}
        versions = checkpoint["channel_versions"]
        codes = {}
        for ch, value in checkpoint["channel_values"].items():
            # a channel whose version this put does not change holds the value it was stored
            # with (LangGraph's own PostgresSaver keys its blobs so): no need to pack it again
            version = versions.get(ch)
            seen = (thread_id, ns, ch, str(version))
            unchanged = version is not None and ch not in new_versions
            known = self.values.known(seen) if unchanged else None
            codes[ch] = self.values.code(value, blobs) if known is None else known
            if version is not None:
                self.values.remember(seen, codes[ch])
        held: dict[str, int] = {}  # each hash stored once, in the row's refs

        def indexed(code: Any) -> Any:
            if isinstance(code, str):
                return held.setdefault(code, len(held))
            if isinstance(code, dict):
                return {k: indexed(c) for k, c in code.items()}
            return [indexed(c) for c in code]

        # its id is the row's: stored once
        type_, body = self.serde.dumps_typed(compact(
            {k: {ch: indexed(c) for ch, c in codes.items()} if k == "channel_values" else v
             for k, v in checkpoint.items() if k != "id"},
            checkpoint["id"],
        ))  # fmt: skip
        meta = json.dumps(get_checkpoint_metadata(config, metadata), ensure_ascii=False)
        self.store.put_thread_checkpoint(
            ThreadCheckpoint(
                thread_id=thread_id,
                ns=ns,
                checkpoint_id=checkpoint["id"],
                parent_id=conf.get("checkpoint_id"),
                graph=self.graph,
                type=PACKED,
                # JSON escapes every NUL, and a serialiser's type name has none
                checkpoint=deflate(b"\0".join((type_.encode(), meta.encode(), body))),
                metadata="",
                refs=tuple(held),
            ),
            list(blobs.values()),
        )
        return {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": ns,
                "checkpoint_id": checkpoint["id"],
            }
        }

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        conf = config["configurable"]
        rows: list[ThreadWrite] = []
        blobs: dict[str, ThreadBlob] = {}
        path = _stored_path(task_path)
        for idx, (channel, value) in enumerate(writes):
            type_, data, refs = self.values.write(value, blobs)
            at = WRITES_IDX_MAP.get(channel, idx)
            rows.append(ThreadWrite(task_id, at, channel, type_, data, path, refs))
        self.store.put_thread_writes(
            str(conf["thread_id"]),
            str(conf.get("checkpoint_ns", "")),
            str(conf["checkpoint_id"]),
            rows,
            replace=all(w[0] in WRITES_IDX_MAP for w in writes),
            blobs=list(blobs.values()),
        )

    def delete_thread(self, thread_id: str) -> None:
        self.store.delete_thread(str(thread_id))

    def get_next_version(self, current: str | None, channel: None) -> str:
        """As SqliteSaver: a zero-padded counter, then a random tie-break."""
        if current is None:
            current_v = 0
        elif isinstance(current, int):
            current_v = current
        else:
            current_v = int(current.split(".")[0])
        return f"{current_v + 1:032}.{random.random():016}"

    # -- async: the same calls on a thread, as the stores are synchronous ---------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        found = await asyncio.to_thread(
            lambda: list(self.list(config, filter=filter, before=before, limit=limit))
        )
        for item in found:
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await asyncio.to_thread(self.delete_thread, thread_id)

    # -- internals ----------------------------------------------------------------------

    def _check_pinned(self, thread_id: str, pinned: str) -> None:
        if pinned == self.graph:
            return
        name, _, version = pinned.partition("@")
        if name == self.name and any(fnmatchcase(version, glob) for glob in self.resumes):
            return
        raise GraphVersionMismatch(thread_id, pinned, self.graph)

    def _tuple(self, row: ThreadCheckpoint) -> CheckpointTuple:
        def config(checkpoint_id: str) -> RunnableConfig:
            return {
                "configurable": {
                    "thread_id": row.thread_id,
                    "checkpoint_ns": row.ns,
                    "checkpoint_id": checkpoint_id,
                }
            }

        writes = sorted(
            (replace(w, task_path=_task_path(w.task_path))
             for w in self.store.thread_writes(row.thread_id, row.ns, row.checkpoint_id)),
            key=lambda w: writes_sort_key(w.task_path, w.task_id, w.idx),  # the order tasks apply
        )  # fmt: skip
        checkpoint, metadata, stored = self._opened(row)
        codes = checkpoint["channel_values"] if stored else {}
        refs = [r for code in codes.values() for r in leaves(code)]
        if row.type == PACKED:
            refs = [row.refs[i] for i in refs]
        for w in writes:
            refs += w.refs if w.type in (REF, ITEMS) else ()
        values = iter(self.values.unpack(refs))
        if stored:
            checkpoint["channel_values"] = {ch: rebuilt(c, values) for ch, c in codes.items()}
        pending = []
        for w in writes:
            if w.type == REF:
                value = next(values)
            elif w.type == ITEMS:
                value = [next(values) for _ in w.refs]
            else:
                value = self._loaded(w.type, w.value)[0]
            pending.append((w.task_id, w.channel, value))
        return CheckpointTuple(
            config(row.checkpoint_id),
            cast(Checkpoint, checkpoint),
            cast(CheckpointMetadata, metadata),
            config(row.parent_id) if row.parent_id else None,
            pending,
        )

    def _opened(self, row: ThreadCheckpoint) -> tuple[Any, dict[str, Any], bool]:
        """A stored checkpoint, its metadata, and whether its channel values are references
        (hashes, or in a PACKED one indexes into its refs)."""
        if row.type == PACKED:
            type_, meta, body = inflate(row.checkpoint).split(b"\0", 2)
            stored = self.serde.loads_typed((type_.decode(), body))
            expand(stored, row.checkpoint_id)
            checkpoint = {}
            for k, v in stored.items():  # the id where LangGraph has it, after ts
                checkpoint[k] = v
                if k == "ts":
                    checkpoint["id"] = row.checkpoint_id
            checkpoint.setdefault("id", row.checkpoint_id)
            return checkpoint, json.loads(meta), True
        checkpoint, stored = self._loaded(row.type, row.checkpoint)
        return checkpoint, json.loads(row.metadata), stored

    def _loaded(self, type_: str, data: bytes) -> tuple[Any, bool]:
        """A stored checkpoint (its channel values by hash), and whether it refers to its
        values: a short write's value, and rows written before values were stored by content,
        are held in the row itself."""
        if type_.startswith(ZREFS):
            return self.serde.loads_typed((type_.removeprefix(ZREFS), decompress(data))), True
        return self.serde.loads_typed((type_, data)), False
