"""Engine, sessions and the one transaction helper (events are published after commit)."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event, inspect, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm.util import identity_key
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from trustdesk.config import Settings
from trustdesk.store import sqlite_inline
from trustdesk.store.raw import Raw, RawReader, Sql, in_transaction

log = logging.getLogger(__name__)
T = TypeVar("T")

# Publishes a committed transaction's events, in order (the hub's publish_many).
Publish = Callable[[list[tuple[str, dict[str, Any]]]], Awaitable[None]]

# Class of the per-ticket / per-visitor locks (two-key advisory locks: their own key space).
SCOPE_LOCK_CLASS = 0x7D35
# Seconds a pooled PostgreSQL connection may sit idle and still be used without a ping.
PING_AFTER_IDLE = 1.0
_SCOPE_LOCK = Sql("SELECT pg_advisory_xact_lock(CAST(:c AS integer), hashtext(CAST(:k AS text)))")


def sqlite_pragmas(conn: Any) -> None:
    """Every SQLite connection: WAL (readers never wait for the writer), foreign keys,
    and commits that survive a crash of the process (NORMAL: not a power cut)."""
    cur = conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(
    settings: Settings, writer: Callable[[], Awaitable[Any]] | None = None
) -> AsyncEngine:
    """The engine. `writer` (SQLite only): the process's one write connection, for the
    engine of the sessions that write transactions open when they need the ORM."""
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        path = make_url(url).database or ""
        # Statements run on the loop's thread; waits for other processes' locks do not.
        if writer is None:
            engine = create_async_engine(url, async_creator=sqlite_inline.connector(path, 30.0))
        else:
            engine = create_async_engine(url, async_creator=writer, poolclass=StaticPool)
        sync = engine.sync_engine

        @event.listens_for(sync, "connect")
        def _on_connect(dbapi_conn: DBAPIConnection, record: ConnectionPoolEntry) -> None:
            # We emit BEGIN ourselves (IMMEDIATE for writes) so that several processes on one
            # file wait for the write lock instead of failing with "database is locked".
            # (The connection is opened in autocommit mode: see sqlite_inline.connector.)
            if writer is None:  # (the write connection got them when it was opened)
                sqlite_pragmas(dbapi_conn)

        @event.listens_for(sync, "begin")
        def _on_begin(conn: Any) -> None:
            if getattr(conn.connection.driver_connection, "in_transaction", False):
                return  # the write connection, already in the transaction Store began
            immediate = conn.get_execution_options().get("td_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    engine = create_async_engine(url, pool_size=20, max_overflow=20)
    pool_events = engine.sync_engine.pool

    # A pooled connection is pinged before use only if it sat idle for a while. SQLAlchemy's
    # pool_pre_ping pinged on every checkout, and on asyncpg a ping is BEGIN, a statement
    # and ROLLBACK: three round trips before every transaction, as many as a reply's own.
    # A connection whose backend died under a statement is dropped as before
    # (tests/unit/test_raw.py); one whose server went away unnoticed within the last second
    # fails its transaction as "storage unavailable" (a retry, not a 500), and SQLAlchemy
    # renews the pool.
    @event.listens_for(pool_events, "checkin")
    def _on_checkin(dbapi_conn: DBAPIConnection | None, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(pool_events, "checkout")
    def _on_checkout(dbapi_conn: DBAPIConnection, record: ConnectionPoolEntry, proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is not None and time.monotonic() - idle_since < PING_AFTER_IDLE:
            return
        try:
            dbapi_conn.ping()  # (the asyncpg adapter's)
        except Exception as exc:
            raise DisconnectionError("the pooled connection did not answer a ping") from exc

    return engine


class Tx:
    """One unit of work: a session plus the events to publish once it has committed.

    SQLite writes run on the process's write connection, begun by Store; their ORM session
    is only opened if the action needs one (`tx.session`): the hot paths (a reply, a
    customer message) run their statements on the driver (`tx.raw()`) and never do.
    Objects loaded raw (`adopt`) join the session when it opens, changes included.
    """

    def __init__(
        self,
        session: AsyncSession | None,
        dialect: str,
        settings: Settings,
        *,
        open_session: Callable[[], AsyncSession] | None = None,
        raw: Raw | None = None,
    ) -> None:
        self._session = session
        self._open_session = open_session
        self._raw = raw
        self.dialect = dialect
        self.settings = settings
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.messages: list[dict[str, Any]] = []
        self.prev_ids: dict[int, int] = {}  # message id -> previous in ticket
        self.after_commit: list[Callable[[], Awaitable[None]]] = []
        self._adopted: dict[tuple[type, Any], Any] = {}

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            assert self._open_session is not None
            self._session = self._open_session()
            self._session.add_all(list(self._adopted.values()))
        return self._session

    @property
    def has_session(self) -> bool:
        return self._session is not None

    def adopted(self, cls: type[T], pk: Any) -> T | None:
        """The object of that class and primary key this transaction already has."""
        found = self._adopted.get((cls, pk))
        if found is None and self._session is not None:
            found = self._session.identity_map.get(identity_key(cls, pk))
        return found if isinstance(found, cls) else None

    def adopt(self, obj: Any, pk: Any) -> None:
        """Hand a detached object (loaded raw) to the transaction, as if its session had
        loaded it: changes to it are flushed like any other."""
        self._adopted[(type(obj), pk)] = obj
        if self._session is not None:
            self._session.add(obj)

    async def flush(self) -> None:
        """Write pending ORM changes (before raw statements that depend on them)."""
        if self._session is None and any(inspect(o).modified for o in self._adopted.values()):
            self.session  # noqa: B018 - opens it, with the changed objects
        if self._session is not None:
            await self._session.flush()

    async def raw(self) -> Raw:
        """This transaction's connection, for the hot statements of store/raw.py (flush
        first if they depend on pending ORM changes)."""
        if self._raw is None:
            conn = await self.session.connection()
            self._raw = await in_transaction(self.dialect, await conn.get_raw_connection())
        return self._raw

    def emit(self, topic: str, event: dict[str, Any]) -> None:
        if (topic, event) in self.events:  # one wake-up per change is enough
            return
        if event.get("type") == "ticket_changed":
            # Each one makes every dashboard read the ticket again: a change for everyone
            # covers one for a single operator ("only"), whichever was emitted first.
            same = [
                (t, e)
                for t, e in self.events
                if t == topic
                and e.get("type") == "ticket_changed"
                and e.get("ticket_ref") == event.get("ticket_ref")
            ]
            if any("only" not in e for _, e in same):
                return
            if "only" not in event:
                for pair in same:
                    self.events.remove(pair)
        self.events.append((topic, event))

    async def lock_scope(self, key: str) -> None:
        """Serialise the actions on one ticket or visitor (e.g. "ticket:1042"), until commit:
        a retried send then finds the first one's message. Taken before the action posts its
        messages. (SQLite: BEGIN IMMEDIATE already serialises writers.)"""
        if self.dialect == "postgresql":
            await (await self.raw()).all(_SCOPE_LOCK, {"c": SCOPE_LOCK_CLASS, "k": key})


def storage_unavailable(exc: BaseException) -> bool:
    """The database is away (restarting, unreachable, locked), or PostgreSQL rolled the
    transaction back to break a deadlock or a serialization conflict: nothing was stored,
    and the same request again will most likely go through. Worth a retry, not a 500.

    Raw statements (store/raw.py) raise the driver's own exceptions, so those count too,
    including asyncpg's InternalClientError: a server that stops while a statement starts
    leaves the protocol mid-way ("cannot switch to state 15; another operation (2) is in
    progress")."""
    from asyncpg import exceptions as pg  # type: ignore[import-untyped]
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    if isinstance(exc, DBAPIError) and (
        exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)
    ):
        return True
    outage = (
        OSError,
        pg.PostgresConnectionError,
        pg.OperatorInterventionError,
        pg.InterfaceError,
        pg.InternalClientError,
        pg.TransactionRollbackError,  # deadlock detected, serialization failure
    )
    cause: BaseException | None = exc
    for _ in range(10):
        if cause is None:
            return False
        if isinstance(cause, outage):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


class Store:
    def __init__(self, settings: Settings, publish: Publish | None = None) -> None:
        self.settings = settings
        self.engine = make_engine(settings)
        self.dialect = self.engine.dialect.name
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.publish = publish
        # Called (in the background) with the messages of each committed transaction.
        self.on_messages: Callable[[list[dict[str, Any]]], Coroutine[Any, Any, None]] | None = None
        self._background: set[asyncio.Task[None]] = set()
        # SQLite has one writer at a time: writers of this process queue here, in order,
        # instead of polling the file lock (other processes are polled: sqlite_inline).
        self._write_lock = asyncio.Lock() if self.dialect == "sqlite" else None
        url = make_url(settings.resolved_database_url)
        self._writer: sqlite_inline.InlineConnection | None = None
        self._writer_path = url.database or ""
        self._checkpointer = (
            sqlite_inline.Checkpointer(self._writer_path, self._write_lock)
            if self._write_lock is not None
            else None
        )
        self._write_sessions: async_sessionmaker[AsyncSession] | None = None
        if self.dialect == "sqlite":
            write_engine = make_engine(settings, writer=self._write_connection)
            self._write_engine: AsyncEngine | None = write_engine
            self._write_sessions = async_sessionmaker(write_engine, expire_on_commit=False)
        else:
            self._write_engine = None
        self.reader = RawReader(
            self.dialect,
            url.set(drivername="postgresql").render_as_string(hide_password=False),
            url.database or "",
        )

    def raw_read(self) -> AbstractAsyncContextManager[Raw]:
        """A short read on the driver, outside any transaction (see store/raw.py)."""
        return self.reader.read()

    async def _write_connection(self) -> sqlite_inline.InlineConnection:
        if self._writer is None:
            self._writer = await sqlite_inline.connector(self._writer_path, 30.0)()
            sqlite_pragmas(self._writer._connection)
            # Its commits never checkpoint the log on the loop's thread: the checkpointer
            # does, on a worker thread (sqlite_inline.Checkpointer).
            self._writer._connection.execute("PRAGMA wal_autocheckpoint=0")
            # SQLAlchemy sets a connection up on its first checkout and ends with a
            # rollback: that must happen now, outside any transaction. (The engine's creator
            # is this method: it returns the connection just made.)
            assert self._write_engine is not None
            async with self._write_engine.connect():
                pass
        return self._writer

    async def dispose(self) -> None:
        await self.reader.close()
        if self._write_engine is not None:
            await self._write_engine.dispose()
        if self._checkpointer is not None:
            await self._checkpointer.close()
        if self._writer is not None:
            self._writer.stop()
            self._writer = None
        await self.engine.dispose()

    @asynccontextmanager
    async def _sqlite_write(self) -> AsyncIterator[Tx]:
        """A write on SQLite: this process's writers queue on the lock, then BEGIN IMMEDIATE
        on the write connection (other processes are waited for: sqlite_inline.retry)."""
        assert self._write_lock is not None and self._write_sessions is not None
        async with self._write_lock:
            writer = await self._write_connection()
            conn = writer._connection
            await sqlite_inline.retry(lambda: conn.execute("BEGIN IMMEDIATE"), writer.busy_seconds)
            tx = Tx(
                None,
                self.dialect,
                self.settings,
                open_session=self._write_sessions,
                raw=Raw(self.dialect, writer),
            )
            try:
                yield tx
                await tx.flush()
                if tx.has_session:
                    await tx.session.commit()  # commits the connection's transaction
                if conn.in_transaction:
                    await sqlite_inline.retry(conn.commit, writer.busy_seconds)
                if self._checkpointer is not None:
                    self._checkpointer.committed()
            finally:
                if tx.has_session:
                    await tx.session.close()  # (rolls back what was not committed)
                if conn.in_transaction:
                    conn.rollback()

    @asynccontextmanager
    async def transaction(self, write: bool = True) -> AsyncIterator[Tx]:
        """Run one action. On success: commit, then publish its events (never before)."""
        if write and self.dialect == "sqlite":
            async with self._sqlite_write() as tx:
                yield tx
        else:
            async with self.sessions() as session:
                tx = Tx(session, self.dialect, self.settings)
                yield tx
                await session.commit()
        if self.publish is not None and tx.events:
            await self.publish(tx.events)
        if self.on_messages is not None and tx.messages:
            task = asyncio.create_task(self.on_messages(list(tx.messages)))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        for fn in tx.after_commit:
            try:
                await fn()
            except Exception:  # pragma: no cover - a side effect must not fail the action
                log.exception("after-commit hook failed")

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session


MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def run_migrations(settings: Settings) -> None:
    """alembic upgrade head (used by `trustdesk migrate` and `trustdesk run`)."""
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from trustdesk.store.backup import before_upgrade

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["database_url"] = settings.resolved_database_url
    head = ScriptDirectory.from_config(cfg).get_current_head() or ""
    if not settings.is_sqlite:  # (back up with pg_dump first: docs/deployment.md)
        command.upgrade(cfg, "head")  # env.py serialises processes with an advisory lock
        return
    # Several processes starting on one SQLite file migrate one at a time.
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with (settings.data_dir / "migrate.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            note = before_upgrade(settings, head)
            if note:
                print(note, file=sys.stderr, flush=True)
            command.upgrade(cfg, "head")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
