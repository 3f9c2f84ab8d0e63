"""The send stream of the fault tests: visitors and an operator send, something fails.

See tests/faults/test_crash.py for what is checked. `stream_with_crash` takes up to two
servers: visitors send to `a` and the operator to `b`; the visitor sockets are on `b` and
the operator socket on `a`, so that every message crosses between processes when there
are two.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable
from typing import Any

from tests.support.clients import OperatorClient, VisitorClient
from tests.support.inspect_db import query
from tests.support.resume import ResumingClient, operator_client, visitor_client
from tests.support.senders import RetryingSender
from tests.support.server import ADMIN_EMAIL, ADMIN_PASSWORD, ServerProcess

VISITORS = 4
PER_VISITOR = 25
OPERATOR_REPLIES = 20


def stored(srv: ServerProcess) -> list[tuple[int, str, str | None, str, str]]:
    """(id, ticket number, client_msg_id, kind, text) of every stored message, in the
    operators' stream's order (commit order: (tx, id), docs/protocol.md)."""
    return [
        (int(r[0]), r[1], r[2], r[3], r[4])
        for r in query(
            srv,
            "SELECT m.id, t.number, m.client_msg_id, m.kind, m.message FROM support_messages m "
            "JOIN tickets t ON t.id = m.ticket_id ORDER BY m.tx, m.id",
        )
    ]


async def stream_with_crash(
    a: ServerProcess,
    crash: Callable[[threading.Event], None],
    b: ServerProcess | None = None,
    visitors: int = VISITORS,
    per_visitor: int = PER_VISITOR,
) -> dict[str, Any]:
    """Run the send stream; `crash(failed)` (blocking) is called once the stream is under
    way; `failed` is set as soon as any send has failed (the fault has been felt)."""
    b = b or a
    run = uuid.uuid4().hex[:6]  # client_msg_ids are unique per run (a database may be reused)
    vs = [VisitorClient(a.url) for _ in range(visitors)]
    tickets = [
        v.send(f"начало {i}", client_msg_id=f"{run}-v{i}-start")["ticketId"]
        for i, v in enumerate(vs)
    ]
    op = OperatorClient(b.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    for t in tickets:
        op.open(t)
    cookie = op.http.cookies["td_session"]

    def a_url() -> str:
        return a.url

    def b_url() -> str:
        return b.url

    clients: list[ResumingClient] = [
        visitor_client(lambda: b.ws_url, v.token, t) for v, t in zip(vs, tickets, strict=True)
    ]
    op_sock = operator_client(lambda: a.ws_url, cookie, a.url)
    for c in [*clients, op_sock]:
        await c.connect()

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 180
    total = visitors * per_visitor + OPERATOR_REPLIES
    under_way = asyncio.Event()
    acked = 0

    def count() -> None:
        nonlocal acked
        acked += 1
        if acked >= total // 3:
            under_way.set()

    senders = [
        RetryingSender(a_url, "/api/support/send-message", {"Authorization": f"Bearer {v.token}"})
        for v in vs
    ]
    op_sender = RetryingSender(
        b_url, "/api/admin/support/reply", {"X-CSRF-Token": op.csrf}, cookies={"td_session": cookie}
    )

    async def visitor_stream(i: int) -> None:
        for n in range(per_visitor):
            body = {
                "message": f"v{i} #{n}",
                "client_msg_id": f"{run}-v{i}-{n}",
                "ticketId": tickets[i],
            }
            await senders[i].send(body, deadline)
            count()

    async def operator_stream() -> None:
        for n in range(OPERATOR_REPLIES):
            t = tickets[n % len(tickets)]
            body = {"ticketId": t, "message": f"op #{n}", "client_msg_id": f"{run}-op-{n}"}
            await op_sender.send(body, deadline)
            count()

    stop = asyncio.Event()
    pumps = [asyncio.create_task(c.pump_until(stop.is_set, 200)) for c in [*clients, op_sock]]

    failed = threading.Event()
    for s in [*senders, op_sender]:
        s.failed = failed

    async def crasher() -> None:
        await under_way.wait()
        await asyncio.to_thread(crash, failed)

    await asyncio.gather(
        *(visitor_stream(i) for i in range(visitors)), operator_stream(), crasher()
    )
    stop.set()
    await asyncio.gather(*pumps)

    rows = await asyncio.to_thread(stored, a)
    # Both sides' sockets catch up with the database, exactly.
    for c, t in zip(clients, tickets, strict=True):
        mine = sorted(r for r in rows if r[1] == t and r[3] != "note")  # a ticket: id order
        await c.sync_to(mine[-1][0], timeout=60)
        assert [(m["id"], m["message"]) for m in c.log] == [(r[0], r[4]) for r in mine]
    await op_sock.sync_to(rows[-1][0], timeout=60)
    assert [(m["id"], m["message"]) for m in op_sock.log] == [(r[0], r[4]) for r in rows]
    for c in [*clients, op_sock]:
        await c.close()
    return {
        "run": run,
        "rows": rows,
        "acks": [a for s in [*senders, op_sender] for a in s.acks],
        "failures": sum(s.failures for s in [*senders, op_sender]),
        "statuses": [code for s in [*senders, op_sender] for code in s.statuses],
        "reconnects": [c.connections for c in [*clients, op_sock]],
    }


def check_exactly_once(result: dict[str, Any]) -> None:
    rows, acks = result["rows"], result["acks"]
    by_cid: dict[str, list[tuple[int, str]]] = {}
    for mid, _, cid, _, text in rows:
        if cid is not None and cid.startswith(result["run"]):
            by_cid.setdefault(cid, []).append((mid, text))
    for a in acks:
        assert by_cid.get(a.client_msg_id) == [(a.message_id, a.text)], a
    assert len(acks) == VISITORS * PER_VISITOR + OPERATOR_REPLIES
    assert len({a.client_msg_id for a in acks}) == len(acks)
    assert all(len(v) == 1 for v in by_cid.values())
