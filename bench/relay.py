"""The floor: a bare `websockets` server that relays a frame from one socket to another.

    python -m bench.relay --port 8765

Every client sends a first frame {"type": "hello", "id": "<name>"} and gets {"type": "ready"}.
After that, a JSON frame {"to": "<name>", ...} is forwarded, byte for byte, to the socket that
said hello with that name (dropped if there is none). Nothing is stored, authenticated or
fanned out: this is the cost of a WebSocket hop in Python, the lowest latency and memory a
Python chat server on this machine could reach. It runs on uvloop with the same wire
settings as TrustDesk's server: no permessage-deflate (`trustdesk run` turns it off; until
2026-11-29 the relay kept the websockets default, compression on, which made the floor
slower and its idle sockets larger than a like-for-like server's: docs/benchmarks.md).

    python -m bench.relay --port 8765 --store sqlite:/tmp/relay.db
    python -m bench.relay --port 8765 --store postgresql://postgres@127.0.0.1:5432/relay

The durable relay (`--store`, issue 24): before forwarding a frame addressed to another
socket it inserts one row (sender, recipient, the frame) and commits, on the same kind of
database as the TrustDesk server it stands beside. SQLite: the stdlib driver on the event
loop, a file with TrustDesk's pragmas (`store/db.py` `sqlite_pragmas`: WAL, foreign keys,
synchronous=NORMAL), one autocommitted INSERT per frame. PostgreSQL: asyncpg, a pool of
connections, one autocommitted INSERT per frame on the server the bench started (fsync off
as for TrustDesk there). Nothing else: no reads, no fan-out, no authentication. It is the
least any server that keeps what it delivers must do, the reference TrustDesk is held to.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

clients: dict[str, ServerConnection] = {}

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS frames (id {pk}, sender TEXT NOT NULL, "
    "recipient TEXT NOT NULL, body TEXT NOT NULL)"
)


class Store:
    """Where the durable relay commits each frame before forwarding it."""

    async def open(self) -> None:
        raise NotImplementedError

    async def save(self, sender: str, recipient: str, body: str) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class SqliteStore(Store):
    def __init__(self, path: str) -> None:
        self.path = path

    async def open(self) -> None:
        import sqlite3

        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=NORMAL"):
            self.db.execute(f"PRAGMA {pragma}")
        self.db.execute(SCHEMA.format(pk="INTEGER PRIMARY KEY"))

    async def save(self, sender: str, recipient: str, body: str) -> None:
        # Autocommit mode: the INSERT is its own transaction, committed when it returns.
        self.db.execute(
            "INSERT INTO frames (sender, recipient, body) VALUES (?, ?, ?)",
            (sender, recipient, body),
        )

    async def close(self) -> None:
        self.db.close()


class PostgresStore(Store):
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn.replace("postgresql+asyncpg://", "postgresql://")

    async def open(self) -> None:
        import asyncpg

        self.pool = await asyncpg.create_pool(self.dsn, min_size=4, max_size=16)
        await self.pool.execute(SCHEMA.format(pk="BIGSERIAL PRIMARY KEY"))

    async def save(self, sender: str, recipient: str, body: str) -> None:
        await self.pool.execute(
            "INSERT INTO frames (sender, recipient, body) VALUES ($1, $2, $3)",
            sender,
            recipient,
            body,
        )

    async def close(self) -> None:
        await self.pool.close()


def make_store(spec: str) -> Store:
    if spec.startswith("sqlite:"):
        return SqliteStore(spec.removeprefix("sqlite:"))
    if spec.startswith("postgresql"):
        return PostgresStore(spec)
    raise SystemExit(f"--store {spec!r}: expected sqlite:PATH or postgresql://...")


store: Store | None = None  # the bare relay stores nothing


async def handler(ws: ServerConnection) -> None:
    try:
        hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
        ident = str(hello["id"])
    except (TimeoutError, ValueError, KeyError, TypeError, ConnectionClosed):
        return
    clients[ident] = ws
    try:
        await ws.send('{"type":"ready"}')
        async for raw in ws:
            frame: Any = json.loads(raw)
            to = frame.get("to") if isinstance(frame, dict) else None
            dest = clients.get(to) if isinstance(to, str) else None
            if dest is not None and store is not None:
                await store.save(ident, str(to), raw if isinstance(raw, str) else raw.decode())
            if dest is not None:
                with contextlib.suppress(ConnectionClosed):
                    await dest.send(raw)
    except ConnectionClosed:
        pass
    finally:
        if clients.get(ident) is ws:
            del clients[ident]


async def main(host: str, port: int, store_spec: str | None = None) -> None:
    global store
    if store_spec:
        store = make_store(store_spec)
        await store.open()
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with serve(handler, host, port, max_size=1024 * 1024, compression=None):
        print(f"relay listening on {host}:{port} (store: {store_spec or 'none'})", flush=True)
        await stop
    if store is not None:
        await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--store", default=None, help="durable relay: sqlite:PATH or postgresql://... (none: bare)"
    )
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(main(args.host, args.port, args.store))
    except ImportError:  # pragma: no cover - uvicorn[standard] brings uvloop
        asyncio.run(main(args.host, args.port, args.store))
