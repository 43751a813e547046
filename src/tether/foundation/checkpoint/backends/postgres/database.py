"""The PostgreSQL connection side of I2: the pool, transactions, errors and LISTEN.

Every psycopg failure to reach the server leaves here as `DatabaseUnavailable`, one line naming
the DSN without its password (httpx maps its transport's exceptions the same way). Pool
connections are autocommit, so a single statement is its own transaction and commit; `tx`
wraps several in one.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from tether.errors import ConfigurationError, DatabaseUnavailable, RunStateError
from tether.foundation.checkpoint.backends.postgres.schema import migrate
from tether.settings import redact_dsn

log = logging.getLogger("tether.checkpoint.postgres")
T = TypeVar("T")
Conn = psycopg.Connection[dict[str, Any]]
NOW = "extract(epoch from now())::float8"  # the database's clock, stable within a statement
# Errors after which the whole transaction may simply run again (DeadlockDetected is not a
# TransactionRollback subclass in psycopg, though both are SQLSTATE class 40).
_RETRYABLE = (psycopg.errors.DeadlockDetected, psycopg.errors.TransactionRollback)
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class _ErrorMap:
    """A class, not a `contextlib.contextmanager`: it wraps every append, where a generator
    costs a microsecond."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.secret = urlsplit(url).password or ""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, e: BaseException | None, tb: Any) -> None:
        if isinstance(e, (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout)):
            msg = " ".join(str(e).split()) or type(e).__name__
            if self.secret:
                msg = msg.replace(self.secret, "***")
            raise DatabaseUnavailable(
                f"PostgreSQL at {redact_dsn(self.url)} is unavailable: {msg}"
            ) from e
        if isinstance(e, psycopg.errors.UniqueViolation):
            raise RunStateError(f"already exists: {e.diag.message_detail}") from e


class Database:
    """A pool on one schema, migrated at start; a channel named for the schema."""

    def __init__(
        self, url: str, schema: str | None, pool_size: int = 10, connect_timeout: float = 5.0
    ) -> None:
        if schema is not None and not _SCHEMA_NAME.fullmatch(schema):
            raise ConfigurationError(
                f"checkpoint schema {schema!r} is not a plain lower-case SQL name "
                "(letters, digits, underscore; at most 63)"
            )
        self.url = url
        self._connect_timeout = int(connect_timeout)
        self._listener: psycopg.Connection[Any] | None = None
        self._listen_lock = threading.Lock()
        self._local = threading.local()  # each executing thread's own append connection
        self._owned: list[Conn] = []
        self._error_map = _ErrorMap(url)
        with self.errors():
            with psycopg.connect(url, autocommit=True, connect_timeout=self._connect_timeout) as c:
                self.schema = migrate(c, schema, redact_dsn(url))
            self.channel = f"tether_work_{self.schema}"[:63]
            self._pool: ConnectionPool[Conn] = ConnectionPool(
                url,
                min_size=1,
                max_size=pool_size,
                timeout=connect_timeout * 2,
                kwargs={"autocommit": True, "row_factory": dict_row},
                configure=self._configure,
                open=False,
                name="tether-checkpoint",
            )
            self._pool.open(wait=True, timeout=connect_timeout * 2)

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))

    def errors(self) -> _ErrorMap:
        """psycopg's connection failures become one line naming the DSN, password hidden."""
        return self._error_map

    def tx(self, fn: Callable[[Conn], T]) -> T:
        """Run `fn` in one transaction, again if PostgreSQL broke a deadlock by aborting it
        (a cancel locks parent then child while a finishing child locks child then parent)."""
        with self.errors():
            for attempt in range(5):
                try:
                    with self._pool.connection() as c, c.transaction():
                        return fn(c)
                except _RETRYABLE as e:
                    log.debug("transaction retried (%d): %s", attempt + 1, e)
                    last = e
            raise last

    def one(self, query: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """One autocommitted statement: its own transaction, its own commit."""
        with self.errors(), self._pool.connection() as c:
            cur = c.execute(query, args)
            return cur.fetchall() if cur.description else []

    def rowcount(self, query: str, args: Sequence[Any]) -> int:
        """One autocommitted statement that returns no rows: the hot-path append. It runs on
        the calling thread's own connection (a worker thread executes one run at a time), so a
        step pays no pool checkout and the statement stays prepared on that connection."""
        with self.errors():
            conn = self._thread_connection()
            try:
                return conn.execute(query, args).rowcount
            except (psycopg.OperationalError, psycopg.InterfaceError):
                self._local.conn = None  # broken: the next call connects afresh
                with contextlib.suppress(psycopg.Error):
                    conn.close()
                raise

    def _thread_connection(self) -> Conn:
        conn: Conn | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = psycopg.connect(
                self.url, autocommit=True, row_factory=dict_row,
                connect_timeout=self._connect_timeout,
            )  # fmt: skip
            self._configure(conn)
            self._local.conn = conn
            with self._listen_lock:
                self._owned = [c for c in self._owned if not c.closed] + [conn]
        return conn

    def wait(self, timeout: float) -> None:
        """LISTEN on the schema's channel; also wake for the next timer due before `timeout`."""
        with self._listen_lock, self.errors():
            try:
                if self._listener is None:
                    self._listener = psycopg.connect(
                        self.url, autocommit=True, connect_timeout=self._connect_timeout
                    )
                    self._configure(self._listener)
                    self._listener.execute(
                        sql.SQL("LISTEN {}").format(sql.Identifier(self.channel))
                    )
                row = self._listener.execute(
                    f"SELECT min(wake_at) - {NOW} FROM runs "
                    f"WHERE status IN ('sleeping', 'waiting') AND wake_at > {NOW}"
                ).fetchone()
                if row is not None and row[0] is not None:
                    timeout = min(timeout, float(row[0]))
                for _ in self._listener.notifies(timeout=max(timeout, 0.0), stop_after=1):
                    pass
                for _ in self._listener.notifies(timeout=0.0):
                    pass  # drain: one wake-up covers every notification queued so far
            except psycopg.Error:
                self._close_listener()
                raise

    def _close_listener(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(psycopg.Error):
                self._listener.close()
            self._listener = None

    def close(self) -> None:
        with self._listen_lock:
            self._close_listener()
            for conn in self._owned:
                with contextlib.suppress(psycopg.Error):
                    conn.close()
            self._owned = []
        self._pool.close()
