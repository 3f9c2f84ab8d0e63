"""Delivered messages per second on PostgreSQL + Redis with a network between the app and
the database: `python -m bench.pg_throughput --processes 1 --delay-ms 1`.

A PostgreSQL and a Redis of their own, bench/tcp_delay.py between TrustDesk and
PostgreSQL (the delay is added each way), 1 or 2 TrustDesk processes on them. Customers on
the widget socket, spread over the processes, each send a message as soon as the last one
was acknowledged (a closed loop, `--conversations` of them); one dashboard, on the first
process, counts the customers' messages it is sent. The figure: those per second over
`--seconds`, after a warm-up. What bounds it: the database's round trips per message, and
before issue 24 the one lock every message took (held across the statement's answer and
the commit: two network crossings each way at least).

Run it against another checkout (e.g. main, "before") with PYTHONPATH=<checkout>/src: the
server processes import TrustDesk from there.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from bench.servers import LOAD_ENV, ROOT, BenchServer, raise_nofile
from tests.support.server import ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD
from tests.support.services import Postgres, Redis, free_port, port_open, wait_until


class Counts:
    def __init__(self) -> None:
        self.acked = 0
        self.delivered = 0
        self.errors = 0


async def customer(url: str, ws_url: str, counts: Counts, stop: asyncio.Event, n: int) -> None:
    """A customer whose first message (over HTTP) opened a ticket, then sends on the widget's
    socket following that ticket, each message once the last one was acknowledged."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        r = await http.post("/api/support/session")
        r.raise_for_status()
        token = r.json()["token"]
        r = await http.post(
            "/api/support/send-message",
            headers={"Authorization": f"Bearer {token}"},
            json={"message": f"start {n}", "client_msg_id": f"c{n}-start"},
        )
        r.raise_for_status()
        ticket = r.json()["ticketId"]
    async with connect(ws_url + "/ws/visitor", open_timeout=30, ping_interval=None) as ws:
        hello = {"type": "hello", "token": token, "ticketId": ticket, "since": 2**53 - 1}
        await ws.send(json.dumps(hello))
        i = 0
        while not stop.is_set():
            frame = {"type": "send", "message": f"T|{n}|{i}", "client_msg_id": f"c{n}-{i}"}
            await ws.send(json.dumps(frame))
            while True:
                f = json.loads(await asyncio.wait_for(ws.recv(), 60))
                if f.get("type") == "ack":
                    counts.acked += 1
                    break
                if f.get("type") == "error":
                    counts.errors += 1
                    if counts.errors <= 3:
                        print("error frame:", f, file=sys.stderr)
                    break
            i += 1


async def dashboard(ws: ClientConnection, counts: Counts) -> None:
    with contextlib.suppress(Exception):
        async for raw in ws:
            f = json.loads(raw)
            if f.get("type") == "message":
                m = f.get("message") or {}
                if str(m.get("message", "")).startswith("T|"):
                    counts.delivered += 1


async def drive(servers: list[BenchServer], args: argparse.Namespace) -> dict[str, Any]:
    counts = Counts()
    async with httpx.AsyncClient(base_url=servers[0].url, timeout=30) as http:
        r = await http.post(
            "/api/admin/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        r.raise_for_status()
        sid = http.cookies.get("td_session")
    dash = await connect(
        servers[0].ws_url + "/ws/operator",
        open_timeout=30,
        ping_interval=None,
        max_size=2**24,
        additional_headers={"Cookie": f"td_session={sid}", "Origin": servers[0].url},
    )
    await dash.send(json.dumps({"type": "hello", "since": 0}))
    reader = asyncio.create_task(dashboard(dash, counts))
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(
            customer(
                servers[n % len(servers)].url, servers[n % len(servers)].ws_url, counts, stop, n
            )
        )
        for n in range(args.conversations)
    ]
    await asyncio.sleep(args.warmup)
    d0, a0, t0 = counts.delivered, counts.acked, time.monotonic()
    await asyncio.sleep(args.seconds)
    d1, a1, t1 = counts.delivered, counts.acked, time.monotonic()
    stop.set()
    await asyncio.wait(tasks, timeout=30)
    for t in tasks:
        t.cancel()
    failed = [t for t in tasks if t.done() and not t.cancelled() and t.exception()]
    await dash.close()
    reader.cancel()
    return {
        "delivered_per_s": (d1 - d0) / (t1 - t0),
        "stored_per_s": (a1 - a0) / (t1 - t0),
        "errors": counts.errors,
        "failed_customers": len(failed),
    }


def pg_round_trip_ms(port: int, n: int = 200) -> float:
    """Median of `SELECT 1` through this port (asyncpg), to check the added delay."""
    import asyncpg  # type: ignore[import-untyped]

    async def go() -> float:
        conn = await asyncpg.connect(host="127.0.0.1", port=port, user="postgres")
        times = []
        for _ in range(n):
            t = time.perf_counter()
            await conn.fetchval("SELECT 1")
            times.append(time.perf_counter() - t)
        await conn.close()
        times.sort()
        return times[len(times) // 2] * 1000

    return asyncio.run(go())


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--processes", type=int, default=1)
    p.add_argument("--delay-ms", type=float, default=1.0)
    p.add_argument("--conversations", type=int, default=40)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--warmup", type=float, default=3)
    p.add_argument("--label", default="")
    args = p.parse_args(argv)
    raise_nofile()
    root = Path(tempfile.mkdtemp(prefix="pg-throughput-"))
    pg = Postgres(root / "pg")
    redis = Redis(root / "redis")
    proxy: subprocess.Popen[bytes] | None = None
    servers: list[BenchServer] = []
    try:
        pg.start()
        redis.start()
        db = f"tp_{int(time.time() * 1000)}"
        pg.create_database(db)
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
        direct, delayed = pg_round_trip_ms(pg.port), pg_round_trip_ms(port)
        url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/{db}"
        for k in range(args.processes):
            srv = BenchServer(
                root / f"data{k}", database_url=url, redis_url=redis.url, extra_env=dict(LOAD_ENV)
            )
            if k == 0:
                srv.create_operator(ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, "admin")
            srv.start()
            servers.append(srv)
        res = asyncio.run(drive(servers, args))
        res.update(
            label=args.label,
            processes=args.processes,
            conversations=args.conversations,
            seconds=args.seconds,
            select1_ms_direct=round(direct, 3),
            select1_ms_proxied=round(delayed, 3),
        )
        print(json.dumps(res), flush=True)
    finally:
        for srv in servers:
            srv.stop()
        if proxy is not None:
            proxy.terminate()
            proxy.wait(10)
        redis.stop()
        pg.stop("immediate")


if __name__ == "__main__":
    main()
