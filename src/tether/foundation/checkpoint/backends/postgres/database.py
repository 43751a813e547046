"""The PostgreSQL connection side of I2: the pool, transactions, errors and LISTEN.

Every psycopg failure to reach the server leaves here as `DatabaseUnavailable`, one line naming
the DSN without its password (httpx maps its transport's exceptions the same way). Pool
connections are autocommit, so a single statement is its own transaction and commit; `tx`
wraps several in one.

A lost connection (a restart, a failover, a server unreachable for a while) is not an error
yet: the call runs again on a fresh connection, with backoff, for up to `reconnect_seconds`,
and the process logs one line when the outage begins and one when it ends. Running a write
again is safe because every run write checks its lease: one whose first try did commit finds
the lease moved on (or, for the append, its own row) and says so, as it would in a race.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
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


def _connection_lost(e: BaseException) -> bool:
    """The server went away or cannot be reached (SQLSTATE class 08, or 57P: shut down, crashed,
    starting up), not a statement that failed on a live connection (57014, a cancelled query)."""
    cause = e.__cause__ if isinstance(e, DatabaseUnavailable) else e
    if isinstance(cause, (PoolTimeout, psycopg.InterfaceError)):
        return True
    if isinstance(cause, psycopg.OperationalError):
        state = cause.sqlstate
        return state is None or state.startswith(("08", "57P"))
    return False


class _Outage:
    """One log line when the server is lost and one when it answers again, however many
    threads retry meanwhile. Connections that died in the outage and are found dead just after
    it (the pool's idle ones, other threads' own) belong to it: they log nothing more."""

    _SETTLE = 5.0  # seconds after an outage in which a lost connection is its aftermath

    def __init__(self, url: str, seconds: float) -> None:
        self._where = f"PostgreSQL at {redact_dsn(url)}"
        self._seconds = seconds
        self._since: float | None = None
        self._logged = False
        self._ended = -_Outage._SETTLE
        self._lock = threading.Lock()

    def begin(self, e: BaseException) -> None:
        with self._lock:
            if self._since is None:
                self._since = time.monotonic()
                self._logged = self._since - self._ended > self._SETTLE
                if self._logged:
                    log.warning("%s; reconnecting with backoff for up to %.0fs", e, self._seconds)

    def end(self) -> None:
        if self._since is None:
            return
        with self._lock:
            if self._since is not None:
                self._ended = time.monotonic()
                if self._logged:
                    took = self._ended - self._since
                    log.warning("%s answers again after %.1fs", self._where, took)
                self._since = None


class _PoolNoise(logging.Filter):
    """psycopg_pool warns of every connection it discards or fails to open; in an outage that is
    a line a second per process, and the outage's own two lines already say it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.WARNING


logging.getLogger("psycopg.pool").addFilter(_PoolNoise())


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
        self,
        url: str,
        schema: str | None,
        pool_size: int = 10,
        connect_timeout: float = 5.0,
        reconnect_seconds: float = 30.0,
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
        # not the listener's lock: that one is held for a whole wait, and a thread's first
        # statement must not wait for another thread's LISTEN to time out
        self._owned_lock = threading.Lock()
        self._owned: list[Conn] = []
        self._error_map = _ErrorMap(url)
        self._reconnect_seconds = reconnect_seconds
        self._outage = _Outage(url, reconnect_seconds)
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

    def _surviving(self, fn: Callable[[], T], again: Callable[[], T] | None = None) -> T:
        """`fn`, and should it lose the connection, `again` (by default `fn` itself) as
        `_again` retries it."""
        try:
            return fn()
        except DatabaseUnavailable as e:
            if not _connection_lost(e):
                raise
            return self._again(again or fn, e)

    def _again(self, fn: Callable[[], T], error: DatabaseUnavailable) -> T:
        """`fn` again after `error` lost the connection: with backoff, until it runs or
        `reconnect_seconds` have passed (then the last error is raised)."""
        self._outage.begin(error)
        deadline = time.monotonic() + self._reconnect_seconds
        delay = 0.05
        while time.monotonic() + delay < deadline:
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
            try:
                result = fn()
            except DatabaseUnavailable as e:
                if not _connection_lost(e):
                    raise
                error = e
                continue
            self._outage.end()
            return result
        raise error

    def tx(self, fn: Callable[[Conn], T]) -> T:
        """Run `fn` in one transaction, again if PostgreSQL broke a deadlock by aborting it
        (a cancel locks parent then child while a finishing child locks child then parent),
        or if the connection was lost."""
        return self._surviving(lambda: self._tx(fn))

    def _tx(self, fn: Callable[[Conn], T]) -> T:
        with self.errors():
            for attempt in range(5):
                try:
                    with self._pool.connection() as c, c.transaction():
                        return fn(c)
                except _RETRYABLE as e:
                    log.debug("transaction retried (%d): %s", attempt + 1, e)
                    last = e
            raise last

    def answer(self, query: str, args: Sequence[Any]) -> list[Any]:
        """One autocommitted statement's first column, on the calling thread's own connection
        (as `rowcount`), run again if PostgreSQL broke a deadlock by aborting it, or if the
        connection was lost (a statement that did commit then meets its own rows)."""
        return self._surviving(lambda: self._answer(query, args))

    def _answer(self, query: str, args: Sequence[Any]) -> list[Any]:
        with self.errors():
            conn = self._thread_connection()
            for attempt in range(5):
                try:
                    return [next(iter(row.values())) for row in conn.execute(query, args)]
                except _RETRYABLE as e:
                    log.debug("statement retried (%d): %s", attempt + 1, e)
                    last = e
                except (psycopg.OperationalError, psycopg.InterfaceError):
                    self._drop_thread_connection(conn)
                    raise
            raise last

    def one(self, query: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """One autocommitted statement: its own transaction, its own commit."""
        return self._surviving(lambda: self._one(query, args))

    def _one(self, query: str, args: Sequence[Any]) -> list[dict[str, Any]]:
        with self.errors(), self._pool.connection() as c:
            cur = c.execute(query, args)
            return cur.fetchall() if cur.description else []

    def rowcount(self, query: str, args: Sequence[Any]) -> int:
        """One autocommitted statement that returns no rows: the hot-path append. It runs on
        the calling thread's own connection (a worker thread executes one run at a time), so a
        step pays no pool checkout and the statement stays prepared on that connection."""
        return self._surviving(
            lambda: self._rowcount(query, args), lambda: self._rowcount_again(query, args)
        )

    def _rowcount_again(self, query: str, args: Sequence[Any]) -> int:
        """An insert whose first try may have committed before the connection was lost: its
        row already there (the run's lease still ours, or no row would have been selected to
        insert) means it did."""
        try:
            return self._rowcount(query, args)
        except RunStateError:
            return 1

    def returning(self, query: str, args: Sequence[Any]) -> list[dict[str, Any]]:
        """One autocommitted statement and its rows on the calling thread's own connection, as
        `rowcount`: a stream append, whose one statement writes the value and its entry."""
        return self._surviving(lambda: self._returning(query, args))

    def _returning(self, query: str, args: Sequence[Any]) -> list[dict[str, Any]]:
        with self.errors():
            conn = self._thread_connection()
            try:
                return conn.execute(query, args).fetchall()
            except (psycopg.OperationalError, psycopg.InterfaceError):
                self._drop_thread_connection(conn)
                raise

    def _rowcount(self, query: str, args: Sequence[Any]) -> int:
        with self.errors():
            conn = self._thread_connection()
            try:
                return conn.execute(query, args).rowcount
            except (psycopg.OperationalError, psycopg.InterfaceError):
                self._drop_thread_connection(conn)
                raise

    def _drop_thread_connection(self, conn: Conn) -> None:
        """A broken connection: the calling thread's next statement connects afresh."""
        self._local.conn = None
        with contextlib.suppress(psycopg.Error):
            conn.close()

    def _thread_connection(self) -> Conn:
        conn: Conn | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = psycopg.connect(
                self.url, autocommit=True, row_factory=dict_row,
                connect_timeout=self._connect_timeout,
            )  # fmt: skip
            self._configure(conn)
            self._local.conn = conn
            with self._owned_lock:
                self._owned = [c for c in self._owned if not c.closed] + [conn]
        return conn

    def wait(self, timeout: float) -> None:
        """LISTEN on the schema's channel; also wake for the next timer due before `timeout`.
        While the server is lost this just waits `timeout`: the caller's next query reconnects
        (and says so), and the listener is opened again on the next call."""
        with self._listen_lock:
            try:
                with self.errors():
                    self._listen(timeout)
            except DatabaseUnavailable as e:
                self._close_listener()
                if not _connection_lost(e):
                    raise
                self._outage.begin(e)
            except psycopg.Error:
                self._close_listener()
                raise
            else:
                self._outage.end()
                return
        time.sleep(max(timeout, 0.0))

    def _listen(self, timeout: float) -> None:
        if self._listener is None:
            self._listener = psycopg.connect(
                self.url, autocommit=True, connect_timeout=self._connect_timeout
            )
            self._configure(self._listener)
            self._listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
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

    def _close_listener(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(psycopg.Error):
                self._listener.close()
            self._listener = None

    def close(self) -> None:
        with self._listen_lock:
            self._close_listener()
        with self._owned_lock:
            for conn in self._owned:
                with contextlib.suppress(psycopg.Error):
                    conn.close()
            self._owned = []
        self._pool.close()
