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
            dest = clients.get(frame.get("to")) if isinstance(frame, dict) else None
            if dest is not None:
                with contextlib.suppress(ConnectionClosed):
                    await dest.send(raw)
    except ConnectionClosed:
        pass
    finally:
        if clients.get(ident) is ws:
            del clients[ident]


async def main(host: str, port: int) -> None:
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with serve(handler, host, port, max_size=1024 * 1024, compression=None):
        print(f"relay listening on {host}:{port}", flush=True)
        await stop


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(main(args.host, args.port))
    except ImportError:  # pragma: no cover - uvicorn[standard] brings uvloop
        asyncio.run(main(args.host, args.port))
