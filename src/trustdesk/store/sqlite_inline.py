"""SQLite on the event loop's thread, shaped like an aiosqlite connection for SQLAlchemy.

aiosqlite runs every call (execute, fetch, commit, rollback) on a worker thread and wakes
the loop for each result. Our statements take microseconds in SQLite; the hand-off took
about 0.4 ms each on the benchmark machine (60 times the statement), and a chat message
runs a dozen of them (docs/benchmarks.md). Here each call runs directly instead.

What that costs, and how it is handled:
- A call that waits for a lock must not block the loop. The connections use
  ``busy_timeout = 0``: a locked database raises SQLITE_BUSY at once, and the call is
  retried after an ``asyncio.sleep`` with backoff, for up to ``busy_seconds`` (other
  processes on the same file are waited for without freezing this one). Within a process,
  writers queue on an asyncio lock before ``BEGIN IMMEDIATE`` (``Store.transaction``), so
  they never poll for each other.
- A slow statement (a full-text ``LIKE`` over a large history) holds the loop while it
  runs. Deployments with large histories belong on PostgreSQL anyway (docs/deployment.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)

_BUSY = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in _BUSY
    return "locked" in str(exc) or "busy" in str(exc)  # pragma: no cover - old sqlite3


async def retry(fn: Callable[[], T], busy_seconds: float) -> T:
    """Run ``fn`` now; while the database is locked by someone else, retry with backoff."""
    try:
        return fn()
    except sqlite3.OperationalError as exc:
        if not _is_busy(exc):
            raise
    loop = asyncio.get_running_loop()
    deadline = loop.time() + busy_seconds
    delay = 0.001
    while True:
        await asyncio.sleep(delay)
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or loop.time() >= deadline:
                raise
        delay = min(delay * 2, 0.05)


class InlineCursor:
    """The subset of ``aiosqlite.Cursor`` that SQLAlchemy's adapter uses."""

    def __init__(self, conn: InlineConnection) -> None:
        self._conn = conn
        self._cursor = conn._connection.cursor()

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> InlineCursor:
        params = () if parameters is None else parameters
        await retry(lambda: self._cursor.execute(sql, params), self._conn.busy_seconds)
        return self

    async def executemany(self, sql: str, seq: Iterable[Sequence[Any]]) -> InlineCursor:
        rows = list(seq)  # a retry must see the same rows again
        await retry(lambda: self._cursor.executemany(sql, rows), self._conn.busy_seconds)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class InlineConnection:
    """The subset of ``aiosqlite.Connection`` that SQLAlchemy's adapter uses."""

    def __init__(self, connection: sqlite3.Connection, busy_seconds: float) -> None:
        self._connection = connection  # (the adapter checks this attribute)
        self.busy_seconds = busy_seconds

    @property
    def in_transaction(self) -> bool:
        return self._connection.in_transaction

    @property
    def isolation_level(self) -> str | None:
        return self._connection.isolation_level

    def cursor(self) -> InlineCursor:
        return InlineCursor(self)

    async def commit(self) -> None:
        await retry(self._connection.commit, self.busy_seconds)

    async def rollback(self) -> None:
        self._connection.rollback()

    async def close(self) -> None:
        self._connection.close()

    def stop(self) -> None:
        self._connection.close()

    async def create_function(self, *args: Any, **kw: Any) -> None:
        self._connection.create_function(*args, **kw)


def connector(path: str, busy_seconds: float) -> Callable[[], Any]:
    """An ``async_creator`` for ``create_async_engine("sqlite+aiosqlite://...")``."""

    async def connect() -> InlineConnection:
        conn = sqlite3.connect(
            path,
            timeout=0,  # never block the loop: retry waits instead
            isolation_level=None,  # we emit BEGIN ourselves (store/db.py)
            check_same_thread=False,  # the pool may close it from another thread
        )
        return InlineConnection(conn, busy_seconds)

    return connect


class Checkpointer:
    """Copies the write-ahead log back into the database file off the loop's thread.

    SQLite does this itself by default, inside the COMMIT that takes the log past 1,000
    pages: that commit then copies the pages and syncs both files on the loop's thread (a
    1-6 ms stall of everything, a few times a second under load; docs/benchmarks.md). The
    write connection turns that off (``wal_autocheckpoint=0``) and calls :meth:`committed`
    after each commit. Every ``every`` commits, on a thread of the loop's executor with its
    own connection (SQLite releases the GIL while it works):

    1. a PASSIVE checkpoint copies the log as it is while writers go on;
    2. then, holding the process's write lock (this process's writers wait, the loop does
       not), a second PASSIVE checkpoint copies the few pages written meanwhile, so that
       the next write starts the log over instead of growing it for ever (a log that
       writers keep appending to is never wholly copied).

    PASSIVE never waits: a RESTART checkpoint in step 2 would also wait for readers of the
    old log, through SQLite's busy handler, which sleeps in steps of up to 100 ms while
    this process's writers queue on the lock (a trial run: p99 1.6 s). If a reader or
    another process's writer still uses the old log, it is not started over this round;
    a later round does it. (Processes that all write without pause on one file would keep
    it from ever starting over: such deployments belong on PostgreSQL anyway.)
    """

    def __init__(self, path: str, lock: asyncio.Lock, every: int = 200) -> None:
        self.path = path
        self.every = every
        self._lock = lock
        self._commits = 0
        self._running: asyncio.Task[None] | None = None
        self._conn: sqlite3.Connection | None = None
        self._closed = False

    def committed(self) -> None:
        self._commits += 1
        if self._commits >= self.every and self._running is None and not self._closed:
            self._commits = 0
            self._running = asyncio.get_running_loop().create_task(self._run())
            self._running.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running = None
        if not task.cancelled() and task.exception() is not None:
            # A failed checkpoint loses nothing (the log keeps the pages): the next one
            # (or SQLite's own, when the last connection closes) copies them.
            log.warning("WAL checkpoint failed: %s", task.exception())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._checkpoint)
        async with self._lock:
            await loop.run_in_executor(None, self._checkpoint)

    def _checkpoint(self) -> None:
        if self._conn is None:
            self._conn = sqlite3.connect(
                self.path, timeout=0, isolation_level=None, check_same_thread=False
            )
        self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    async def wait(self) -> None:
        """Return once no checkpoint is running (its failure is logged, not raised)."""
        while self._running is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._running)

    async def close(self) -> None:
        """Wait for a running checkpoint and close its connection (what is left in the log
        is checkpointed by SQLite when the last connection to the file closes)."""
        self._closed = True
        await self.wait()
        if self._conn is not None:
            self._conn.close()
            self._conn = None
