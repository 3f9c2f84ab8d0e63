"""PostgreSQL connections are pinged before use only after sitting idle (store/db.py):
a ping on asyncpg is three round trips, as many as a reply's own statements."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.support.services import Postgres
from trustdesk.config import Settings
from trustdesk.store import db
from trustdesk.store.db import Store, run_migrations
from trustdesk.store.raw import Sql

PID = Sql("SELECT pg_backend_pid()")


def test_a_connection_is_pinged_only_after_idling(postgres: Postgres, tmp_path: Path) -> None:
    url = postgres.create_database(f"ping_{int(time.time() * 1000)}")
    s = Settings(data_dir=tmp_path, database_url=url)
    run_migrations(s)
    seen: list[str] = []

    async def one() -> int:
        async with store.transaction() as tx:
            raw = await tx.raw()
            if not raw.driver._query_loggers:
                raw.driver.add_query_logger(lambda record: seen.append(record.query))
            return int(await raw.scalar(PID))

    async def main() -> None:
        try:
            pid = await one()
            seen.clear()
            assert await one() == pid  # the same pooled connection, used just now
            assert ";" not in seen and PID.pg in seen
            seen.clear()
            db.PING_AFTER_IDLE = 0.0  # now every connection counts as idle
            assert await one() == pid
            assert seen.count(";") == 1 and PID.pg in seen
        finally:
            db.PING_AFTER_IDLE = saved
            await store.dispose()

    saved = db.PING_AFTER_IDLE
    store = Store(s)
    asyncio.run(main())


def test_a_read_sends_nothing_but_its_statements(postgres: Postgres, tmp_path: Path) -> None:
    """Store.raw_read() returns its connection to the pool without a reset statement
    (asyncpg's default sends one, a round trip after every read)."""
    url = postgres.create_database(f"reader_{int(time.time() * 1000)}")
    s = Settings(data_dir=tmp_path, database_url=url)
    run_migrations(s)
    seen: list[str] = []

    async def main() -> None:
        store = Store(s)
        try:
            for _ in range(3):
                async with store.raw_read() as raw:
                    if not raw.driver._query_loggers:
                        raw.driver.add_query_logger(lambda record: seen.append(record.query))
                    await raw.scalar(PID)
            assert seen and all(q == PID.pg for q in seen), seen
        finally:
            await store.dispose()

    asyncio.run(main())
