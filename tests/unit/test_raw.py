"""store/raw.py: the hot statements on the driver connection, on real SQLite and PostgreSQL.

What must hold: a statement run through `Tx.raw()` is part of the transaction (rolled back
with it, even as its first statement on PostgreSQL, where SQLAlchemy begins lazily);
datetimes written raw read back equal through the ORM and raw; list parameters work with
several, one and no values."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.support.services import Postgres
from trustdesk.config import Settings
from trustdesk.store.db import Store, run_migrations, storage_unavailable
from trustdesk.store.models import Visitor
from trustdesk.store.raw import Sql, as_loaded, to_dt

_NEW_VISITOR = Sql(
    "INSERT INTO visitors (id, token_hash, created_at, last_seen_at) VALUES (:id, :h, :at, :at)"
)
_SEEN = Sql("SELECT last_seen_at FROM visitors WHERE id = :id")
_SOME = Sql("SELECT id FROM visitors WHERE id IN :ids[text] ORDER BY id")


class Boom(Exception):
    pass


def test_translation_numbers_each_name_once() -> None:
    q = Sql("SELECT :a, :b, :a WHERE x IN :ids[text] AND y::text = 'k:z'")
    assert q.pg_names == ("a", "b", "ids")
    assert q.pg.startswith("SELECT $1, $2, $1 WHERE x IN (SELECT unnest(CAST($3 AS text[])))")
    assert "y::text = 'k:z'" in q.pg  # casts and literals are left alone
    assert "json_each(:ids)" in q.sqlite


def test_raw_statements_belong_to_the_transaction(settings: Settings) -> None:
    at = datetime(2026, 11, 28, 12, 30, 45, 123456, tzinfo=UTC)

    async def main() -> None:
        store = Store(settings)
        try:
            with pytest.raises(Boom):
                async with store.transaction() as tx:  # the raw insert is its first statement
                    await (await tx.raw()).run(_NEW_VISITOR, {"id": "gone", "h": "h0", "at": at})
                    raise Boom
            async with store.transaction() as tx:
                raw = await tx.raw()
                for k in ("a", "b", "c"):
                    await raw.run(_NEW_VISITOR, {"id": k, "h": f"h{k}", "at": at})
            async with store.read() as session:
                ids = list((await session.scalars(select(Visitor.id).order_by(Visitor.id))).all())
                assert ids == ["a", "b", "c"]
                v = await session.get(Visitor, "b")
                assert v is not None and v.last_seen_at == at  # the ORM reads raw writes
            async with store.raw_read() as raw:
                assert to_dt(await raw.scalar(_SEEN, {"id": "c"})) == at
                assert [r[0] for r in await raw.all(_SOME, {"ids": ["c", "a", "x"]})] == ["a", "c"]
                assert [r[0] for r in await raw.all(_SOME, {"ids": ["b"]})] == ["b"]
                assert await raw.all(_SOME, {"ids": []}) == []
        finally:
            await store.dispose()

    asyncio.run(main())


def test_objects_loaded_raw_are_flushed_with_the_transaction(settings: Settings) -> None:
    """A ticket loaded on the driver and changed is written at commit, even when the
    transaction never opened an ORM session (SQLite writes open one only when needed);
    a failing transaction keeps none of its raw or ORM changes."""
    from trustdesk.actions.tickets import load_ticket
    from trustdesk.store.models import Ticket

    at = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    status = Sql("SELECT status, epoch FROM tickets WHERE number = :n")

    async def main() -> None:
        store = Store(settings)
        try:
            async with store.transaction() as tx:
                await (await tx.raw()).run(_NEW_VISITOR, {"id": "v", "h": "hv", "at": at})
                tx.session.add(Ticket(id="t1", number="TKT-1-AAAA", visitor_id="v"))
            async with store.transaction() as tx:
                t = await load_ticket(tx, "TKT-1-AAAA")
                assert t is not None and t.status == "open"
                assert tx.has_session == (store.dialect != "sqlite")
                assert await load_ticket(tx, "TKT-1-AAAA") is t  # one object per row
                t.status = "closed"
            async with store.raw_read() as raw:
                assert tuple(await raw.first(status, {"n": "TKT-1-AAAA"}) or ()) == ("closed", 0)
            with pytest.raises(Boom):
                async with store.transaction() as tx:
                    t = await load_ticket(tx, "TKT-1-AAAA")
                    assert t is not None
                    t.epoch = 5
                    await tx.flush()
                    await (await tx.raw()).run(_NEW_VISITOR, {"id": "w", "h": "hw", "at": at})
                    raise Boom
            async with store.raw_read() as raw:
                assert tuple(await raw.first(status, {"n": "TKT-1-AAAA"}) or ()) == ("closed", 0)
                assert await raw.all(_SOME, {"ids": ["w"]}) == []
        finally:
            await store.dispose()

    asyncio.run(main())


def test_a_broken_driver_connection_counts_as_storage_unavailable() -> None:
    """PostgreSQL stopping while a raw statement starts leaves asyncpg's protocol mid-way
    ("cannot switch to state 15; another operation (2) is in progress", seen in the restart
    test): an outage (503, retry), not a 500."""
    from asyncpg import exceptions as pg  # type: ignore[import-untyped]

    def wrapped(cause: BaseException) -> BaseException:
        try:
            try:
                raise cause
            except BaseException as inner:
                raise RuntimeError("as SQLAlchemy re-raises it") from inner
        except RuntimeError as outer:
            return outer

    state = pg.InternalClientError("cannot switch to state 15; another operation (2) is in use")
    assert storage_unavailable(wrapped(state))
    assert storage_unavailable(wrapped(pg.ConnectionDoesNotExistError("closed")))
    assert not storage_unavailable(wrapped(pg.UniqueViolationError("duplicate key")))
    assert not storage_unavailable(wrapped(Boom()))


def test_a_transaction_postgres_rolled_back_for_a_deadlock_is_worth_a_retry() -> None:
    """A deadlock victim stored nothing: the client retries (503 with Retry-After, its
    client_msg_id kept), as after an outage, instead of a 500."""
    from asyncpg import exceptions as pg

    for exc in (pg.DeadlockDetectedError("deadlock detected"), pg.SerializationError("x")):
        try:
            try:
                raise exc
            except pg.PostgresError as inner:
                raise RuntimeError("as SQLAlchemy re-raises it") from inner
        except RuntimeError as outer:
            assert storage_unavailable(outer)


def test_a_connection_lost_under_a_raw_statement_is_not_reused(
    postgres: Postgres, tmp_path: Path
) -> None:
    """The raw statements bypass SQLAlchemy's disconnect handling: a backend that dies under
    one must be dropped from the pool, or the next transactions get a dead connection."""
    url = postgres.create_database(f"rawlost_{int(time.time() * 1000)}")
    s = Settings(data_dir=tmp_path, database_url=url)
    run_migrations(s)
    pid_of = Sql("SELECT pg_backend_pid()")
    terminate = Sql("SELECT pg_terminate_backend(:p)")

    async def main() -> None:
        store = Store(s)
        try:
            # Warm the pool with a few connections, all idle afterwards.
            async def hold() -> None:
                async with store.transaction() as tx:
                    await (await tx.raw()).scalar(pid_of)
                    await asyncio.sleep(0)

            await asyncio.gather(*(hold() for _ in range(4)))
            with pytest.raises(Exception) as info:
                async with store.transaction() as tx:
                    raw = await tx.raw()
                    pid = await raw.scalar(pid_of)
                    async with store.raw_read() as other:
                        assert await other.scalar(terminate, {"p": pid}) is True
                    await raw.scalar(pid_of)
            assert storage_unavailable(info.value), repr(info.value)
            for _ in range(8):  # every pooled connection in turn: none is the dead one
                async with store.transaction() as tx:
                    assert await (await tx.raw()).scalar(pid_of) != pid
        finally:
            await store.dispose()

    asyncio.run(main())


def test_an_object_built_from_a_raw_row_is_tracked_like_a_loaded_one(settings: Settings) -> None:
    """as_loaded: adopted by a transaction, a changed attribute is written at commit and an
    unchanged object writes nothing."""
    at = datetime(2026, 11, 29, 10, 0, 0, 0, tzinfo=UTC)
    later = datetime(2026, 11, 29, 11, 0, 0, 0, tzinfo=UTC)

    async def main() -> None:
        store = Store(settings)
        try:
            async with store.transaction() as tx:
                await (await tx.raw()).run(_NEW_VISITOR, {"id": "v", "h": "hv", "at": at})
            async with store.transaction() as tx:
                row = {"id": "v", "token_hash": "hv", "created_at": at, "last_seen_at": at}
                v = as_loaded(Visitor, row)
                tx.adopt(v, "v")
                assert not tx.session.dirty  # nothing to write
                v.last_seen_at = later
                assert list(tx.session.dirty) == [v]
            async with store.raw_read() as raw:
                assert to_dt(await raw.scalar(_SEEN, {"id": "v"})) == later
        finally:
            await store.dispose()

    asyncio.run(main())
