"""Thread checkpoints (integrations/langgraph) once for both SQL databases: three tables of
their own, `thread_checkpoints`, `thread_writes` and `thread_blobs` (values stored once by
content), beside the runs and with no key into them. The statements are SQL both databases
speak; only the placeholder differs. A checkpoint's or write's `refs` lists the blobs it refers
to; checkpoint and task ids, blob hashes and refs are stored as bytes (thread_ids.py,
thread_hashes.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Generic, TypeVar

from tether.foundation.checkpoint.contract import (
    ThreadBlob,
    ThreadCheckpoint,
    ThreadQuery,
    ThreadsPruned,
    ThreadWrite,
)
from tether.foundation.checkpoint.sql.dialect import Connection, Database
from tether.foundation.checkpoint.thread_hashes import hash_key, hash_text, refs_key, refs_text
from tether.foundation.checkpoint.thread_ids import id_key, id_text
from tether.foundation.checkpoint.threads import reachable

D = TypeVar("D", bound=Database)
_CP = "thread_id, ns, checkpoint_id, parent_id, graph, type, checkpoint, metadata, refs"
_W = "thread_id, ns, checkpoint_id, task_id, idx, channel, type, value, task_path, refs"
_IN = 500  # hashes asked for in one statement


class ThreadStatements:
    """The statements, built once per placeholder."""

    def __init__(self, placeholder: str, *, one_writer: bool) -> None:
        def q(text: str) -> str:
            return text.replace("?", placeholder)

        self.placeholder = placeholder
        self.put_checkpoint = q(
            f"INSERT INTO thread_checkpoints ({_CP}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (thread_id, ns, checkpoint_id) DO UPDATE SET "
            "parent_id = EXCLUDED.parent_id, graph = EXCLUDED.graph, type = EXCLUDED.type, "
            "checkpoint = EXCLUDED.checkpoint, metadata = EXCLUDED.metadata, refs = EXCLUDED.refs"
        )
        insert = f"INSERT INTO thread_writes ({_W}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        self.put_write = q(
            f"{insert}ON CONFLICT (thread_id, ns, checkpoint_id, task_id, idx) DO UPDATE SET "
            "channel = EXCLUDED.channel, type = EXCLUDED.type, value = EXCLUDED.value, "
            "task_path = EXCLUDED.task_path, refs = EXCLUDED.refs"
        )
        self.put_blob = q(
            "INSERT INTO thread_blobs (hash, type, value, refs) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (hash) DO NOTHING"
        )
        self.keep_write = q(f"{insert}ON CONFLICT DO NOTHING")
        self.writes = q(
            f"SELECT {_W} FROM thread_writes WHERE thread_id = ? AND ns = ? "
            "AND checkpoint_id = ? ORDER BY task_id, idx"
        )
        # PostgreSQL: a put that relies on a blob already stored waits while the sweep runs
        # (SQLite's writer lock, taken at BEGIN, already serialises them)
        self.lock_blobs = None if one_writer else "LOCK TABLE thread_blobs IN EXCLUSIVE MODE"
        self.old_checkpoints = q(
            "SELECT thread_id, ns, checkpoint_id FROM (SELECT thread_id, ns, checkpoint_id, "
            "row_number() OVER (PARTITION BY thread_id, ns ORDER BY checkpoint_id DESC) AS n "
            "FROM thread_checkpoints) AS ranked WHERE n > ?"
        )
        where = "WHERE thread_id = ? AND ns = ? AND checkpoint_id = ?"
        self.delete_checkpoint = q(f"DELETE FROM thread_checkpoints {where}")
        self.delete_checkpoint_writes = q(f"DELETE FROM thread_writes {where}")
        self.delete_blob = q("DELETE FROM thread_blobs WHERE hash = ?")
        self.checkpoint_refs = "SELECT refs FROM thread_checkpoints"
        self.write_refs = "SELECT thread_id, ns, checkpoint_id, refs FROM thread_writes"
        self.blob_refs = "SELECT hash, refs FROM thread_blobs"
        self.delete_checkpoints = q("DELETE FROM thread_checkpoints WHERE thread_id = ?")
        self.delete_writes = q("DELETE FROM thread_writes WHERE thread_id = ?")


class SqlThreads(Generic[D]):
    """The thread-checkpoint half of the I2 contract, mixed into both SQL checkpointers."""

    _threads_sql: ClassVar[ThreadStatements]
    _db: D

    def _put_blobs(self, c: Connection, blobs: Sequence[ThreadBlob]) -> None:
        if blobs:
            c.cursor().executemany(
                self._threads_sql.put_blob, [(hash_key(b.hash), b.type, b.value, refs_key(b.refs))
                                             for b in blobs],
            )  # fmt: skip

    def put_thread_checkpoint(
        self, checkpoint: ThreadCheckpoint, blobs: Sequence[ThreadBlob] = ()
    ) -> None:
        c = checkpoint
        parent = None if c.parent_id is None else id_key(c.parent_id)
        row = (c.thread_id, c.ns, id_key(c.checkpoint_id), parent, c.graph, c.type, c.checkpoint,
               c.metadata, refs_key(c.refs))  # fmt: skip

        def put(conn: Connection) -> None:
            self._put_blobs(conn, blobs)
            conn.execute(self._threads_sql.put_checkpoint, row)

        if blobs:
            self._db.tx(put)
        else:
            self._db.rowcount(self._threads_sql.put_checkpoint, row)

    def put_thread_writes(
        self,
        thread_id: str,
        ns: str,
        checkpoint_id: str,
        writes: Sequence[ThreadWrite],
        replace: bool,
        blobs: Sequence[ThreadBlob] = (),
    ) -> None:
        query = self._threads_sql.put_write if replace else self._threads_sql.keep_write
        key = id_key(checkpoint_id)
        rows = [
            (thread_id, ns, key, id_key(w.task_id), w.idx, w.channel, w.type, w.value,
             w.task_path, refs_key(w.refs))
            for w in writes
        ]  # fmt: skip

        def put(c: Connection) -> None:
            self._put_blobs(c, blobs)
            c.cursor().executemany(query, rows)

        if len(rows) == 1 and not blobs:
            # one statement is its own transaction: no BEGIN and COMMIT to send (a round trip
            # each on PostgreSQL), and it runs on the thread's own connection, as an append
            self._db.rowcount(query, rows[0])
        elif rows:
            self._db.tx(put)

    def thread_checkpoint(
        self, thread_id: str, ns: str, checkpoint_id: str | None
    ) -> ThreadCheckpoint | None:
        found = self.thread_checkpoints(
            ThreadQuery(thread_id=thread_id, ns=ns, checkpoint_id=checkpoint_id, limit=1)
        )
        return found[0] if found else None

    def thread_checkpoints(self, query: ThreadQuery) -> list[ThreadCheckpoint]:
        p = self._threads_sql.placeholder
        where, args = ["1 = 1"], list[Any]()
        for column, value in (
            ("thread_id", query.thread_id), ("ns", query.ns),
            ("checkpoint_id", None if query.checkpoint_id is None else id_key(query.checkpoint_id)),
        ):  # fmt: skip
            if value is not None:
                where.append(f"{column} = {p}")
                args.append(value)
        if query.before is not None:
            where.append(f"checkpoint_id < {p}")
            args.append(id_key(query.before))
        sql = f"SELECT {_CP} FROM thread_checkpoints WHERE {' AND '.join(where)} "
        sql += "ORDER BY checkpoint_id DESC"
        if query.limit is not None:
            sql += f" LIMIT {p}"
            args.append(query.limit)
        return [
            ThreadCheckpoint(
                r["thread_id"],
                r["ns"],
                id_text(bytes(r["checkpoint_id"])),
                None if r["parent_id"] is None else id_text(bytes(r["parent_id"])),
                r["graph"],
                r["type"],
                bytes(r["checkpoint"]),
                r["metadata"],
                refs_text(bytes(r["refs"])),
            )
            for r in self._db.one(sql, args)
        ]

    def thread_writes(self, thread_id: str, ns: str, checkpoint_id: str) -> list[ThreadWrite]:
        rows = self._db.one(self._threads_sql.writes, (thread_id, ns, id_key(checkpoint_id)))
        return [
            ThreadWrite(id_text(bytes(r["task_id"])), r["idx"], r["channel"], r["type"],
                        bytes(r["value"]), r["task_path"], refs_text(bytes(r["refs"])))
            for r in rows
        ]  # fmt: skip

    def thread_blobs(self, hashes: Sequence[str]) -> dict[str, ThreadBlob]:
        p, found = self._threads_sql.placeholder, {}
        # each key's text, so a row's hash is looked up rather than encoded again
        wanted = {hash_key(h): h for h in hashes}
        keys = list(wanted)
        for i in range(0, len(keys), _IN):
            part = keys[i : i + _IN]
            rows = self._db.one(
                "SELECT hash, type, value, refs FROM thread_blobs "
                f"WHERE hash IN ({', '.join([p] * len(part))})",
                part,
            )
            for r in rows:
                h = wanted[bytes(r["hash"])]
                found[h] = ThreadBlob(h, r["type"], bytes(r["value"]), refs_text(bytes(r["refs"])))
        return found

    def delete_thread(self, thread_id: str) -> None:
        def delete(c: Connection) -> None:
            c.execute(self._threads_sql.delete_checkpoints, (thread_id,))
            c.execute(self._threads_sql.delete_writes, (thread_id,))

        self._db.tx(delete)

    def prune_threads(self, keep: int) -> ThreadsPruned:
        sql = self._threads_sql

        def prune(c: Connection) -> ThreadsPruned:
            if sql.lock_blobs is not None:
                c.execute(sql.lock_blobs, ())
            rows = c.execute(sql.old_checkpoints, (keep,)).fetchall()
            old = {(r["thread_id"], r["ns"], r["checkpoint_id"]) for r in rows}
            writes = 0
            held = []
            for r in c.execute(sql.write_refs, ()).fetchall():
                if (r["thread_id"], r["ns"], r["checkpoint_id"]) in old:
                    writes += 1
                else:
                    held.append(refs_text(bytes(r["refs"])))
            c.cursor().executemany(sql.delete_checkpoint_writes, list(old))
            c.cursor().executemany(sql.delete_checkpoint, list(old))
            held += [refs_text(bytes(r["refs"]))
                     for r in c.execute(sql.checkpoint_refs, ()).fetchall()]  # fmt: skip
            blobs = {hash_text(bytes(r["hash"])): refs_text(bytes(r["refs"]))
                     for r in c.execute(sql.blob_refs, ()).fetchall()}  # fmt: skip
            dropped = set(blobs) - reachable(held, lambda h: blobs.get(h, ()))
            c.cursor().executemany(sql.delete_blob, [(hash_key(h),) for h in dropped])
            return ThreadsPruned(checkpoints=len(old), writes=writes, blobs=len(dropped))

        return self._db.tx(prune)
