"""The hot statements, straight on the driver connection (sqlite3 or asyncpg).

Every operator request, reply, customer message and dashboard update runs a handful of small
indexed statements. Through SQLAlchemy's async ORM each cost 0.1-0.9 ms of Python (sessions,
greenlet hand-offs, result processing, identity map) against 10-30 microseconds in SQLite
itself (docs/benchmarks.md). Those few statements are written here once, in SQL both engines
accept, and run on the connection underneath: in a transaction's own connection
(`Tx.raw()`), or for reads on a connection kept for them (`Store.raw_read()`).

Parameters are `:name`; `:name[text]` / `:name[bigint]` is a list, for `x IN :name[text]`.
Values bound as they are stored by `models.UTCDateTime` and `Boolean` on each engine;
results come back as the driver gives them, so datetimes go through `to_dt` and flags
through `bool`.

What this does not do: pending ORM changes in the same transaction are not flushed first
(callers flush before a raw statement that depends on them), and a driver error is the
driver's own exception class, not SQLAlchemy's.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.instrumentation import manager_of_class

from trustdesk.store import sqlite_inline

M = TypeVar("M")

_PARAM = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)(?:\[(text|bigint)\])?")

Row = Sequence[Any]


@dataclass(frozen=True)
class Sql:
    """One statement in both dialects, translated once. `pg_suffix`: a clause only
    PostgreSQL has, appended to its text (row locks: SQLite's BEGIN IMMEDIATE already
    serialises writers)."""

    text: str
    pg_suffix: str = ""
    sqlite: str = field(init=False)
    pg: str = field(init=False)
    pg_names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        names: list[str] = []

        def to_pg(m: re.Match[str]) -> str:
            name, kind = m.group(1), m.group(2)
            if name not in names:
                names.append(name)
            n = names.index(name) + 1
            return f"(SELECT unnest(CAST(${n} AS {kind}[])))" if kind else f"${n}"

        def to_sqlite(m: re.Match[str]) -> str:
            name, kind = m.group(1), m.group(2)
            # name is an identifier matched by _PARAM, never a value: no injection here.
            return f"(SELECT value FROM json_each(:{name}))" if kind else f":{name}"  # noqa: S608  # nosec B608

        object.__setattr__(self, "sqlite", _PARAM.sub(to_sqlite, self.text))
        object.__setattr__(self, "pg", _PARAM.sub(to_pg, self.text) + self.pg_suffix)
        object.__setattr__(self, "pg_names", tuple(names))


def to_dt(value: Any) -> datetime:
    """A stored datetime as an aware UTC datetime (SQLite gives text, asyncpg datetimes)."""
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def opt_dt(value: Any) -> datetime | None:
    return None if value is None else to_dt(value)


def as_loaded(cls: type[M], values: Mapping[str, Any]) -> M:
    """An ORM object from a row read here, in the state the ORM's own loading leaves one
    in (detached, nothing changed), for a transaction to adopt (`Tx.adopt`). The columns go
    straight into the instance's dict: through the constructor each one is an instrumented
    attribute set, and for a ticket those cost more than the statement that read it."""
    obj: M = manager_of_class(cls).new_instance()
    obj.__dict__.update(values)
    make_transient_to_detached(obj)
    return obj


def _sqlite_value(v: Any) -> Any:
    if isinstance(v, datetime):  # as SQLAlchemy stores DateTime: 2026-11-28 09:00:00.000000
        if v.tzinfo is None:
            raise ValueError("naive datetime")
        return v.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    if isinstance(v, list | tuple):
        return json.dumps(list(v))
    return v


class Raw:
    """A driver connection, spoken to in `Sql` statements."""

    def __init__(self, dialect: str, driver: Any) -> None:
        self.dialect = dialect
        self.driver = driver  # sqlite_inline.InlineConnection or asyncpg.Connection

    async def _sqlite(self, sql: Sql, params: Mapping[str, Any]) -> tuple[list[Any], int]:
        conn: sqlite3.Connection = self.driver._connection
        values = {k: _sqlite_value(v) for k, v in params.items()}

        def run() -> tuple[list[Any], int]:
            cur = conn.execute(sql.sqlite, values)
            try:
                return cur.fetchall(), cur.rowcount
            finally:
                cur.close()

        return await sqlite_inline.retry(run, self.driver.busy_seconds)

    async def all(self, sql: Sql, params: Mapping[str, Any] | None = None) -> list[Row]:
        params = params or {}
        if self.dialect == "sqlite":
            return (await self._sqlite(sql, params))[0]
        return list(await self.driver.fetch(sql.pg, *(params[n] for n in sql.pg_names)))

    async def first(self, sql: Sql, params: Mapping[str, Any] | None = None) -> Row | None:
        rows = await self.all(sql, params)
        return rows[0] if rows else None

    async def scalar(self, sql: Sql, params: Mapping[str, Any] | None = None) -> Any:
        row = await self.first(sql, params)
        return None if row is None else row[0]

    async def run(self, sql: Sql, params: Mapping[str, Any] | None = None) -> int:
        """A statement without rows; returns how many rows it changed."""
        params = params or {}
        if self.dialect == "sqlite":
            return (await self._sqlite(sql, params))[1]
        status: str = await self.driver.execute(sql.pg, *(params[n] for n in sql.pg_names))
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0


async def in_transaction(dialect: str, pooled: Any) -> Raw:
    """The Raw of a SQLAlchemy connection that is inside its transaction (Tx.raw)."""
    if dialect == "postgresql":
        adapted = pooled.dbapi_connection
        # SQLAlchemy's asyncpg adapter begins lazily, on its first statement; a statement
        # sent on the driver before that would run outside the transaction.
        if adapted._transaction is None:
            await adapted._start_transaction()
    return Raw(dialect, pooled.driver_connection)


async def _keep_session(conn: Any) -> None:
    """The reader pool's reset on release: none (see RawReader.read)."""


class RawReader:
    """Connections for short reads outside any transaction: for SQLite one connection of
    this process (statements run on the loop's thread, so one is enough; a read runs in
    BEGIN ... COMMIT, one snapshot), for PostgreSQL a small asyncpg pool."""

    def __init__(self, dialect: str, url: str, sqlite_path: str) -> None:
        self.dialect = dialect
        self.url = url
        self.sqlite_path = sqlite_path
        self._sqlite: sqlite_inline.InlineConnection | None = None
        self._lock = asyncio.Lock()
        self._pool: Any = None
        self._pool_lock = asyncio.Lock()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Raw]:
        if self.dialect == "sqlite":
            async with self._lock:
                if self._sqlite is None:
                    self._sqlite = await sqlite_inline.connector(self.sqlite_path, 30.0)()
                    self._sqlite._connection.execute("PRAGMA foreign_keys=ON")
                conn = self._sqlite._connection
                conn.execute("BEGIN")
                try:
                    yield Raw("sqlite", self._sqlite)
                finally:
                    conn.execute("COMMIT")
            return
        if self._pool is None:
            async with self._pool_lock:
                if self._pool is None:
                    import asyncpg  # type: ignore[import-untyped]

                    # reset: nothing on release. asyncpg's default is a statement
                    # (advisory unlock, CLOSE ALL, UNLISTEN, RESET ALL), a round trip after
                    # every read; these reads change no session state, and a transaction
                    # left open is still rolled back.
                    self._pool = await asyncpg.create_pool(
                        self.url, min_size=1, max_size=4, reset=_keep_session
                    )
        async with self._pool.acquire() as conn:
            yield Raw("postgresql", conn)

    async def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.stop()
            self._sqlite = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
