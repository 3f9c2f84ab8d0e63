"""kill -9 the server in the middle of a stream of sends; nothing acknowledged is lost.

Visitors and an operator send over HTTP, retrying with the same client_msg_id until they
get an answer, as the widget and the dashboard do. Once a good part of the stream is
acknowledged the server is killed with SIGKILL (no shutdown, no flush) and started again
on the same data. Afterwards every message is stored exactly once, each acknowledgement
names the stored row, and both sides' sockets (which were open through the crash and
reconnect by themselves) end up with exactly the stored history: no gap, no duplicate,
in order.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.clients import OperatorClient, VisitorClient
from tests.support.inspect_db import integrity_problems, query
from tests.support.resume import ResumingClient, operator_client, visitor_client
from tests.support.senders import RetryingSender
from tests.support.server import ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, ServerProcess

pytestmark = pytest.mark.timeout(300)

VISITORS = 4
PER_VISITOR = 25
OPERATOR_REPLIES = 20


def stored(srv: ServerProcess) -> list[tuple[int, str, str | None, str, str]]:
    """(id, ticket number, client_msg_id, kind, text) of every stored message, in id order."""
    return [
        (int(r[0]), r[1], r[2], r[3], r[4])
        for r in query(
            srv,
            "SELECT m.id, t.number, m.client_msg_id, m.kind, m.message FROM support_messages m "
            "JOIN tickets t ON t.id = m.ticket_id ORDER BY m.id",
        )
    ]


async def stream_with_crash(
    srv: ServerProcess, crash: Any, visitors: int = VISITORS, per_visitor: int = PER_VISITOR
) -> dict[str, Any]:
    """Run the send stream; `crash()` (blocking) is called once the stream is under way."""
    vs = [VisitorClient(srv.url) for _ in range(visitors)]
    tickets = [v.send(f"начало {i}", client_msg_id=f"v{i}-start")["ticketId"] for i, v in
               enumerate(vs)]
    op = OperatorClient(srv.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    for t in tickets:
        op.open(t)
    cookie = op.http.cookies["td_session"]

    def url() -> str:
        return srv.url

    def ws_url() -> str:
        return srv.ws_url

    clients: list[ResumingClient] = [
        visitor_client(ws_url, v.token, t) for v, t in zip(vs, tickets, strict=True)
    ]
    op_sock = operator_client(ws_url, cookie, srv.url)
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
        RetryingSender(url, "/api/support/send-message", {"Authorization": f"Bearer {v.token}"})
        for v in vs
    ]
    op_sender = RetryingSender(
        url, "/api/admin/support/reply", {"X-CSRF-Token": op.csrf}, cookies={"td_session": cookie}
    )

    async def visitor_stream(i: int) -> None:
        for n in range(per_visitor):
            body = {"message": f"v{i} #{n}", "client_msg_id": f"v{i}-{n}", "ticketId": tickets[i]}
            await senders[i].send(body, deadline)
            count()

    async def operator_stream() -> None:
        for n in range(OPERATOR_REPLIES):
            t = tickets[n % len(tickets)]
            body = {"ticketId": t, "message": f"op #{n}", "client_msg_id": f"op-{n}"}
            await op_sender.send(body, deadline)
            count()

    stop = asyncio.Event()
    pumps = [asyncio.create_task(c.pump_until(stop.is_set, 200)) for c in [*clients, op_sock]]

    async def crasher() -> None:
        await under_way.wait()
        await asyncio.to_thread(crash)

    await asyncio.gather(
        *(visitor_stream(i) for i in range(visitors)), operator_stream(), crasher()
    )
    stop.set()
    await asyncio.gather(*pumps)

    rows = stored(srv)
    # Both sides' sockets catch up with the database, exactly.
    for c, t in zip(clients, tickets, strict=True):
        mine = [r for r in rows if r[1] == t and r[3] != "note"]
        await c.sync_to(mine[-1][0], timeout=60)
        assert [(m["id"], m["message"]) for m in c.log] == [(r[0], r[4]) for r in mine]
    await op_sock.sync_to(rows[-1][0], timeout=60)
    assert [(m["id"], m["message"]) for m in op_sock.log] == [(r[0], r[4]) for r in rows]
    for c in [*clients, op_sock]:
        await c.close()
    return {
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
        if cid is not None:
            by_cid.setdefault(cid, []).append((mid, text))
    for a in acks:
        assert by_cid.get(a.client_msg_id) == [(a.message_id, a.text)], a
    assert len(acks) == VISITORS * PER_VISITOR + OPERATOR_REPLIES
    assert len({a.client_msg_id for a in acks}) == len(acks)
    assert all(len(v) == 1 for v in by_cid.values())


def test_kill_9_mid_stream_loses_and_duplicates_nothing(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    srv = ServerProcess(tmp_path_factory.mktemp("crash"))
    srv.create_operator(ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD)
    srv.start()
    try:

        def crash() -> None:
            srv.kill()
            srv.start()

        result = asyncio.run(asyncio.wait_for(stream_with_crash(srv, crash), 280))
        check_exactly_once(result)
        # The crash really happened in the middle: some sends had to be retried, and every
        # socket had to reconnect.
        assert result["failures"] > 0
        assert all(n >= 2 for n in result["reconnects"])
        assert 500 not in result["statuses"]
        assert integrity_problems(srv) == []
    finally:
        srv.stop()
