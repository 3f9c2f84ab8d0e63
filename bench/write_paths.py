"""The message write, three ways, one writer at a time (issue 24 item 4): what the product's
shortcuts earn against the plain path. `python -m bench.write_paths --engine pg --delay-ms 1`.

- `product`: actions/messages.post_message in Store.transaction (SQLite: statements on the
  loop's thread, store/sqlite_inline.py, through store/raw.py; PostgreSQL: the one
  statement _PG_POST on asyncpg).
- `raw-3`: the same write as three store/raw.py statements (insert, ticket, read cursor):
  what the single PostgreSQL statement saves (round trips).
- `core-3`: the three statements in SQLAlchemy Core on the transaction's session: what
  store/raw.py saves.
- `aiosqlite-core` (SQLite): the three Core statements on a plain aiosqlite engine (a
  worker thread per connection, BEGIN IMMEDIATE): what store/sqlite_inline.py saves.

Each way writes `--messages` messages on one ticket, one after another; the figures are
the median wall time of one write (commit included) and the CPU seconds per message of
this process plus the database server's (PostgreSQL backends).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import event, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import create_async_engine

from bench.servers import ROOT
from tests.support.runtime import runtime
from tests.support.services import Postgres, free_port, port_open, wait_until
from trustdesk.actions import tickets, visitors
from trustdesk.actions.messages import (
    _INSERT_MESSAGE,
    _MOVE_CURSOR,
    _TOUCH_TICKET,
    post_message,
)
from trustdesk.config import Settings
from trustdesk.store.db import run_migrations, sqlite_pragmas
from trustdesk.store.models import ReadCursor, SupportMessage, Ticket, utcnow


def fields(ticket_id: str, i: int, tag: str) -> dict[str, Any]:
    return {
        "ticket_id": ticket_id,
        "sender_type": "admin",
        "sender_name": "Bench",
        "operator_id": None,
        "message": f"{tag} {i}",
        "kind": "text",
        "client_msg_id": f"{tag}-{i}",
        "notice": None,
        "created_at": utcnow(),
    }


def core_statements(dialect: str, f: dict[str, Any]) -> list[Any]:
    ins = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
    return [
        insert(SupportMessage).values(**f).returning(SupportMessage.id),
        lambda mid: (
            update(Ticket)
            .where(Ticket.id == f["ticket_id"])
            .values(updated_at=f["created_at"], last_message_id=mid, last_public_message_id=mid)
        ),
        lambda mid: (
            ins(ReadCursor)
            .values(
                ticket_id=f["ticket_id"],
                reader="op:1",
                last_read_id=mid,
                updated_at=f["created_at"],
            )
            .on_conflict_do_update(
                index_elements=["ticket_id", "reader"],
                set_={"last_read_id": mid, "updated_at": f["created_at"]},
            )
        ),
    ]


class Cpu:
    def __init__(self, pids: list[int]) -> None:
        self.roots = [psutil.Process(p) for p in pids]

    def seconds(self) -> float:
        total = 0.0
        for root in self.roots:
            for p in [root, *root.children(recursive=True)]:
                try:
                    t = p.cpu_times()
                    total += t.user + t.system
                except psutil.Error:
                    pass
        return total


async def timed(n: int, one: Callable[[int], Awaitable[None]], cpu: Cpu) -> dict[str, float]:
    for i in range(20):  # warm-up
        await one(-1 - i)
    times = []
    c0 = cpu.seconds()
    for i in range(n):
        t = time.perf_counter()
        await one(i)
        times.append(time.perf_counter() - t)
    c1 = cpu.seconds()
    times.sort()
    return {
        "p50_ms": round(times[len(times) // 2] * 1000, 3),
        "p90_ms": round(times[int(len(times) * 0.9)] * 1000, 3),
        "cpu_ms_per_msg": round((c1 - c0) / n * 1000, 3),
    }


async def bench(settings: Settings, n: int, server_pids: list[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cpu = Cpu([psutil.Process().pid, *server_pids])
    async with runtime(settings) as rt:
        _, v = await visitors.create_visitor(rt)
        sent = await tickets.send_customer_message(rt, v, "start", None, "start")
        tid = sent.ticket.id
        dialect = rt.store.dialect

        async with rt.store.read() as session:
            ticket = await session.get(Ticket, tid)  # loaded once, as a reply's own read
        assert ticket is not None

        async def product(i: int) -> None:
            async with rt.store.transaction() as tx:
                tx.adopt(ticket, tid)
                await post_message(
                    tx,
                    ticket,
                    sender_type="admin",
                    sender_name="Bench",
                    text=f"p {i}",
                    client_msg_id=f"p-{i}",
                    read_by="op:1",
                )

        async def raw3(i: int) -> None:
            async with rt.store.transaction() as tx:
                raw = await tx.raw()
                f = fields(tid, i, "r")
                mid = await raw.scalar(_INSERT_MESSAGE, f)
                await raw.run(_TOUCH_TICKET, {"tid": tid, "now": f["created_at"], "mid": mid})
                await raw.run(
                    _MOVE_CURSOR, {"t": tid, "r": "op:1", "v": mid, "now": f["created_at"]}
                )

        async def core3(i: int) -> None:
            async with rt.store.transaction() as tx:
                first, touch, cur = core_statements(dialect, fields(tid, i, "c"))
                mid = (await tx.session.execute(first)).scalar_one()
                await tx.session.execute(touch(mid))
                await tx.session.execute(cur(mid))

        out["product"] = await timed(n, product, cpu)
        out["raw-3"] = await timed(n, raw3, cpu)
        out["core-3"] = await timed(n, core3, cpu)
        if dialect == "sqlite":
            engine = create_async_engine(settings.resolved_database_url)

            @event.listens_for(engine.sync_engine, "connect")
            def _connect(dbapi_conn: Any, record: Any) -> None:
                sqlite_pragmas(dbapi_conn)
                dbapi_conn.isolation_level = None

            @event.listens_for(engine.sync_engine, "begin")
            def _begin(conn: Any) -> None:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

            async def aio(i: int) -> None:
                async with engine.begin() as conn:
                    first, touch, cur = core_statements(dialect, fields(tid, i, "a"))
                    mid = (await conn.execute(first)).scalar_one()
                    await conn.execute(touch(mid))
                    await conn.execute(cur(mid))

            out["aiosqlite-core"] = await timed(n, aio, cpu)
            await engine.dispose()
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--engine", choices=["sqlite", "pg"], default="sqlite")
    p.add_argument("--delay-ms", type=float, default=0.0)
    p.add_argument("--messages", type=int, default=400)
    args = p.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="write-paths-"))
    pg: Postgres | None = None
    proxy: subprocess.Popen[bytes] | None = None
    try:
        pids: list[int] = []
        if args.engine == "pg":
            pg = Postgres(root / "pg")
            pg.start()
            pg.create_database("wp")
            port = pg.port
            if args.delay_ms > 0:
                port = free_port()
                proxy = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "bench.tcp_delay",
                        "--listen",
                        str(port),
                        "--target",
                        str(pg.port),
                        "--delay-ms",
                        str(args.delay_ms),
                    ],
                    cwd=ROOT,
                )
                wait_until(lambda: port_open(port), 30, "tcp_delay port")
            settings = Settings(
                data_dir=root / "data",
                database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{port}/wp",
            )
            pids.append(int((pg.datadir / "postmaster.pid").read_text().split()[0]))
        else:
            settings = Settings(data_dir=root / "data")
        run_migrations(settings)
        res = asyncio.run(bench(settings, args.messages, pids))
        print(json.dumps({"engine": args.engine, "delay_ms": args.delay_ms, **res}), flush=True)
    finally:
        if proxy is not None:
            proxy.terminate()
            proxy.wait(10)
        if pg is not None:
            pg.stop("immediate")


if __name__ == "__main__":
    main()
