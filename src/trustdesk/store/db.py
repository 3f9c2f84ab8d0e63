"""Engine, sessions and the one transaction helper (events are published after commit)."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import event, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from trustdesk.config import Settings
from trustdesk.store import sqlite_inline
from trustdesk.store.raw import Raw, RawReader, Sql, in_transaction

log = logging.getLogger(__name__)

# Publishes a committed transaction's events, in order (the hub's publish_many).
Publish = Callable[[list[tuple[str, dict[str, Any]]]], Awaitable[None]]

# Serialises message inserts on PostgreSQL so that ids become visible in id order:
# a client that has seen id N can never later miss an id below N.
MESSAGE_LOCK_KEY = 0x7D35_0001
# Class of the per-ticket / per-visitor locks (two-key advisory locks: their own key space).
SCOPE_LOCK_CLASS = 0x7D35
_MESSAGE_LOCK = Sql("SELECT pg_advisory_xact_lock(CAST(:k AS bigint))")
_SCOPE_LOCK = Sql("SELECT pg_advisory_xact_lock(CAST(:c AS integer), hashtext(CAST(:k AS text)))")


def make_engine(settings: Settings) -> AsyncEngine:
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        path = make_url(url).database or ""
        # Statements run on the loop's thread; waits for other processes' locks do not.
        engine = create_async_engine(url, async_creator=sqlite_inline.connector(path, 30.0))
        sync = engine.sync_engine

        @event.listens_for(sync, "connect")
        def _on_connect(dbapi_conn: DBAPIConnection, record: ConnectionPoolEntry) -> None:
            # We emit BEGIN ourselves (IMMEDIATE for writes) so that several processes on one
            # file wait for the write lock instead of failing with "database is locked".
            # (The connection is opened in autocommit mode: see sqlite_inline.connector.)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(sync, "begin")
        def _on_begin(conn: Any) -> None:
            immediate = conn.get_execution_options().get("td_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    return create_async_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True)


@dataclass
class Tx:
    """One unit of work: a session plus the events to publish once it has committed."""

    session: AsyncSession
    dialect: str
    settings: Settings
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    prev_ids: dict[int, int] = field(default_factory=dict)  # message id -> previous in ticket
    after_commit: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    _raw: Raw | None = None

    async def raw(self) -> Raw:
        """This transaction's connection, for the hot statements of store/raw.py (flush
        the session first if they depend on pending ORM changes)."""
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

    async def lock_messages(self) -> None:
        """Global, until commit: taken by post_message just before the insert, so the
        section every message waits for is only the insert, its ticket update and commit."""
        if self.dialect == "postgresql":
            await (await self.raw()).all(_MESSAGE_LOCK, {"k": MESSAGE_LOCK_KEY})

    async def lock_scope(self, key: str) -> None:
        """Serialise the actions on one ticket or visitor (e.g. "ticket:1042"), until commit:
        a retried send then finds the first one's message. Always taken before the global
        message lock, never after it. (SQLite: BEGIN IMMEDIATE already serialises writers.)"""
        if self.dialect == "postgresql":
            await (await self.raw()).all(_SCOPE_LOCK, {"c": SCOPE_LOCK_CLASS, "k": key})


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
        self.reader = RawReader(
            self.dialect,
            url.set(drivername="postgresql").render_as_string(hide_password=False),
            url.database or "",
        )

    def raw_read(self) -> AbstractAsyncContextManager[Raw]:
        """A short read on the driver, outside any transaction (see store/raw.py)."""
        return self.reader.read()

    async def dispose(self) -> None:
        await self.reader.close()
        await self.engine.dispose()

    @asynccontextmanager
    async def transaction(self, write: bool = True) -> AsyncIterator[Tx]:
        """Run one action. On success: commit, then publish its events (never before)."""
        gate = self._write_lock if write and self._write_lock is not None else None
        async with gate or contextlib.nullcontext(), self.sessions() as session:
            if gate is not None:
                await session.connection(execution_options={"td_write": True})
            tx = Tx(session=session, dialect=self.dialect, settings=self.settings)
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

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["database_url"] = settings.resolved_database_url
    if not settings.is_sqlite:
        command.upgrade(cfg, "head")  # env.py serialises processes with an advisory lock
        return
    # Several processes starting on one SQLite file migrate one at a time.
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with (settings.data_dir / "migrate.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            command.upgrade(cfg, "head")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
