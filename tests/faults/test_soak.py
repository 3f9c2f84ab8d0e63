"""Soak: many conversations for minutes on loopback; nothing lost, memory flat.

200 visitors keep a socket open and write every few seconds (over the socket, with a
client_msg_id, re-sent after a reconnect until acknowledged); two operators reply over
HTTP and one dashboard socket receives everything. Afterwards the stored count equals
what clients sent and got acknowledged, every visitor holds exactly its ticket's history,
the dashboard holds all of it, and the server's memory in the last minute is no higher
than in the first (beyond a small tolerance).

Marked `long` (make test-long). Size with TRUSTDESK_SOAK_CONVERSATIONS (200) and
TRUSTDESK_SOAK_SECONDS (300). The figures are printed and written to
<tmp>/soak.json; docs/benchmarks.md ("Soak") has a run's figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.support.clients import OperatorClient, VisitorClient
from tests.support.inspect_db import integrity_problems, query
from tests.support.resume import ResumingClient, operator_client, visitor_client
from tests.support.server import ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, ServerProcess

CONVERSATIONS = int(os.environ.get("TRUSTDESK_SOAK_CONVERSATIONS", "200"))
SECONDS = float(os.environ.get("TRUSTDESK_SOAK_SECONDS", "300"))
SEND_EVERY = 8.0  # seconds between one visitor's messages (on average)
REPLY_EVERY = 0.5  # seconds between operator replies (per operator)

pytestmark = [pytest.mark.long, pytest.mark.timeout(int(SECONDS) + 900)]


class Visitor:
    def __init__(self, server: ServerProcess, v: VisitorClient, ticket: str) -> None:
        self.v = v
        self.ticket = ticket
        self.client: ResumingClient = visitor_client(server.ws_url, v.token, ticket)
        self.pending: dict[str, str] = {}
        self.acked: dict[str, int] = {}
        self.latencies: list[float] = []
        self.client.on_connect = self.resend

    async def send(self, text: str) -> None:
        """Send over the socket and wait for the ack; the reader task (drain) receives, and
        re-sends everything unacknowledged after each reconnect (on_connect)."""
        cid = uuid.uuid4().hex
        c = self.client
        self.pending[cid] = text
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        c.waiters[cid] = waiter
        start = time.monotonic()
        await self._send_one(cid, text)
        mid = await asyncio.wait_for(waiter, 180)
        self.latencies.append(time.monotonic() - start)
        self.acked[cid] = mid
        del self.pending[cid]

    async def _send_one(self, cid: str, text: str) -> None:
        sock = self.client.sock
        if sock is None:
            return  # the reader reconnects and re-sends
        with contextlib.suppress(Exception):
            await sock.send({"type": "send", "message": text, "client_msg_id": cid})

    async def resend(self) -> None:
        for cid, text in list(self.pending.items()):
            await self._send_one(cid, text)


def _rss(proc: psutil.Process) -> int:
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)])


def test_soak(tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.mktemp("soak")
    srv = ServerProcess(
        root,
        extra_env={
            "TRUSTDESK_VISITOR_RATE_BURST": "100000",
            "TRUSTDESK_VISITOR_RATE_PER_MINUTE": "100000",
        },
    )
    srv.create_operator(ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD)
    srv.start()
    try:
        assert srv.proc is not None
        proc = psutil.Process(srv.proc.pid)
        admin = OperatorClient(srv.url, ADMIN_EMAIL, ADMIN_PASSWORD)
        r = admin.post(
            "/api/admin/operators",
            json={
                "email": "olga@trust.store",
                "name": "Ольга",
                "password": "olga-password-1",
                "role": "agent",
            },
        )
        assert r.status_code == 201
        ops = [admin, OperatorClient(srv.url, "olga@trust.store", "olga-password-1")]
        visitors = []
        for i in range(CONVERSATIONS):
            v = VisitorClient(srv.url)
            visitors.append(Visitor(srv, v, v.send(f"начало {i}")["ticketId"]))
        start_id = 0
        result = asyncio.run(run_soak(srv, proc, visitors, ops, start_id))
    finally:
        srv.stop()
    out = root / "soak.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print("\nSOAK", json.dumps(result, ensure_ascii=False))
    assert result["stored_written_since_start"] == (
        result["acked_visitor"] + result["acked_operator"]
    )
    assert result["rss_growth_mb"] < max(20.0, 0.10 * result["rss_first_minute_mb"]), result


async def run_soak(
    srv: ServerProcess,
    proc: psutil.Process,
    visitors: list[Visitor],
    ops: list[OperatorClient],
    start_id: int,
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    for v in visitors:
        await v.client.connect()
        await v.client.sync_to(v.v.messages()["messages"][-1]["id"])
    before = int(query(srv, "SELECT COUNT(*) FROM support_messages")[0][0])
    dash = operator_client(srv.ws_url, ops[0].http.cookies["td_session"], srv.url)
    dash_start = dash.last = int(query(srv, "SELECT MAX(id) FROM support_messages")[0][0])
    await dash.connect()
    t0 = loop.time()
    end = t0 + SECONDS
    samples: list[tuple[float, int]] = []
    op_acks: list[int] = []
    op_latency: list[float] = []
    rng = random.Random(1)

    async def visitor_loop(v: Visitor) -> None:
        await asyncio.sleep(rng.uniform(0, SEND_EVERY))  # pacing the load, not a sync
        n = 0
        while loop.time() < end:
            await v.send(f"сообщение {n} · {v.ticket}")
            n += 1
            await asyncio.sleep(rng.uniform(0.5, 1.5) * SEND_EVERY)

    async def drain(v: Visitor) -> None:
        await v.client.pump_until(lambda: loop.time() > end and not v.pending, SECONDS + 300)

    async def operator_loop(k: int) -> None:
        op = ops[k]
        async with httpx.AsyncClient(
            base_url=srv.url,
            headers={"X-CSRF-Token": op.csrf},
            cookies={"td_session": op.http.cookies["td_session"]},
            timeout=60,
        ) as http:
            n = 0
            while loop.time() < end:
                v = rng.choice(visitors)
                s = time.monotonic()
                r = await http.post(
                    "/api/admin/support/reply",
                    json={
                        "ticketId": v.ticket,
                        "message": f"ответ {k}/{n}",
                        "client_msg_id": f"op{k}-{n}",
                    },
                )
                assert r.status_code == 200, r.text
                op_latency.append(time.monotonic() - s)
                op_acks.append(r.json()["message"]["id"])
                n += 1
                await asyncio.sleep(REPLY_EVERY)

    async def sampler() -> None:
        while loop.time() < end:
            samples.append((loop.time() - t0, _rss(proc)))
            await asyncio.sleep(5)

    async def dash_loop() -> None:
        await dash.pump_until(lambda: loop.time() > end, SECONDS + 120)

    tasks = [asyncio.create_task(drain(v)) for v in visitors]
    await asyncio.gather(
        *(visitor_loop(v) for v in visitors),
        *(operator_loop(k) for k in range(len(ops))),
        sampler(),
        dash_loop(),
    )
    await asyncio.gather(*tasks)
    after = int(query(srv, "SELECT COUNT(*) FROM support_messages")[0][0])
    # What people wrote (customers and operators); the rest are "operator joined" notices.
    written = int(
        query(
            srv,
            "SELECT COUNT(*) FROM support_messages WHERE id > $1 "
            "AND sender_type IN ('customer', 'admin')",
            dash_start,
        )[0][0]
    )
    acked_v = sum(len(v.acked) for v in visitors)
    # Every side catches up to exactly the stored history.
    last = int(query(srv, "SELECT MAX(id) FROM support_messages")[0][0])
    for v in visitors:
        rows = query(
            srv,
            "SELECT m.id, m.message FROM support_messages m JOIN tickets t ON t.id = m.ticket_id "
            "WHERE t.number = $1 AND m.kind <> 'note' ORDER BY m.id",
            v.ticket,
        )
        await v.client.sync_to(int(rows[-1][0]), 60)
        assert [(m["id"], m["message"]) for m in v.client.log] == [(int(a), b) for a, b in rows]
        await v.client.close()
    await dash.sync_to(last, 60)
    every = query(srv, "SELECT id FROM support_messages WHERE id > $1 ORDER BY tx, id", dash_start)
    assert dash.ids == [int(r[0]) for r in every]
    await dash.close()
    assert integrity_problems(srv) == []
    first = [m for t, m in samples if t <= 60]
    lastm = [m for t, m in samples if t >= SECONDS - 60]
    lat = sorted(x for v in visitors for x in v.latencies)
    return {
        "conversations": len(visitors),
        "seconds": SECONDS,
        "acked_visitor": acked_v,
        "acked_operator": len(op_acks),
        "stored_since_start": after - before,
        "stored_written_since_start": written,
        "messages_per_second": round((after - before) / SECONDS, 1),
        "send_ack_p50_ms": round(1000 * statistics.median(lat), 1),
        "send_ack_p99_ms": round(1000 * lat[int(0.99 * (len(lat) - 1))], 1),
        "reply_p50_ms": round(1000 * statistics.median(op_latency), 1),
        "reconnects": sum(v.client.connections - 1 for v in visitors),
        "rss_first_minute_mb": round(statistics.mean(first) / 2**20, 1),
        "rss_last_minute_mb": round(statistics.mean(lastm) / 2**20, 1),
        "rss_growth_mb": round((statistics.mean(lastm) - statistics.mean(first)) / 2**20, 1),
        "dashboard_frames": len(dash.log),
        "log": str(Path(srv.log_path)),
    }
