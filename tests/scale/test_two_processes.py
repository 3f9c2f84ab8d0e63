"""Two server processes on one PostgreSQL and one Redis: a conversation crosses between them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.clients import OperatorClient, VisitorClient
from tests.support.server import ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, ServerProcess
from tests.support.services import Postgres, Redis, wait_until
from tests.support.wsclient import operator_socket, visitor_socket


@pytest.fixture(scope="module")
def pair(
    postgres: Postgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, ServerProcess, Redis]]:
    redis = Redis(tmp_path_factory.mktemp("redis-pair"))
    redis.start()
    url = postgres.create_database("pair")
    env = {
        "TRUSTDESK_TYPING_TTL_SECONDS": "2",
        "TRUSTDESK_VISITOR_RATE_BURST": "1000",
        "TRUSTDESK_VISITOR_RATE_PER_MINUTE": "100000",
    }
    a = ServerProcess(
        tmp_path_factory.mktemp("A"), database_url=url, redis_url=redis.url, extra_env=env
    )
    b = ServerProcess(
        tmp_path_factory.mktemp("B"), database_url=url, redis_url=redis.url, extra_env=env
    )
    a.create_operator(ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD)
    a.start()
    b.start()
    yield a, b, redis
    a.stop()
    b.stop()
    redis.stop()


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 90))


def test_visitor_on_a_operator_on_b_both_ways(
    pair: tuple[ServerProcess, ServerProcess, Redis],
) -> None:
    a, b, _ = pair

    async def go() -> None:
        v = VisitorClient(a.url)
        ticket = v.send("Здравствуйте, я на процессе A")["ticketId"]
        op_http = OperatorClient(b.url, ADMIN_EMAIL, ADMIN_PASSWORD)
        op, _ = await operator_socket(b.ws_url, op_http.http.cookies["td_session"], b.url)
        vs, _ = await visitor_socket(a.ws_url, v.token, ticket, 0)
        await vs.messages(2)
        # Visitor (A) -> operator (B): message and typing.
        await vs.send({"type": "typing", "active": True})
        t = await op.until(lambda f: f["type"] == "typing" and f["sender_type"] == "customer")
        assert t["active"] and t["ticketId"] == ticket
        await vs.send({"type": "send", "message": "сообщение через A", "client_msg_id": "x1"})
        m = await op.until(
            lambda f: f["type"] == "message" and f["message"]["message"] == "сообщение через A"
        )
        assert m["message"]["ticket_id"] == ticket
        # Operator (B) -> visitor (A): typing, reply, read receipt.
        await op.send({"type": "typing", "ticketId": ticket, "active": True})
        t = await vs.until("typing")
        assert t["active"] and t["name"] == "Артём"
        await asyncio.to_thread(op_http.open, ticket)
        await asyncio.to_thread(op_http.reply, ticket, "ответ с процесса B")
        got = await vs.until(
            lambda f: f["type"] == "message" and f["message"]["message"] == "ответ с процесса B"
        )
        assert got["message"]["sender_type"] == "admin"
        receipt = await vs.until("read")
        assert receipt["reader"] == "admin" and receipt["last_read_id"] >= m["message"]["id"]
        # The customer reads the reply: the operator on B sees the receipt.
        await vs.send({"type": "read", "last_read_id": got["message"]["id"]})
        r = await op.until(lambda f: f["type"] == "read" and f["reader"] == "customer")
        assert r["last_read_id"] == got["message"]["id"]
        await vs.close()
        await op.close()

    run(go())


def test_settings_saved_on_a_apply_on_b_without_restart(
    pair: tuple[ServerProcess, ServerProcess, Redis],
) -> None:
    """The owner saves on one process; the other one's widget and frame follow at once
    (the hub's "settings" topic), and an open dashboard on B hears of it."""
    a, b, _ = pair

    async def go() -> None:
        op_b = OperatorClient(b.url, ADMIN_EMAIL, ADMIN_PASSWORD)
        ws_b, _ = await operator_socket(b.ws_url, op_b.http.cookies["td_session"], b.url)
        op_a = OperatorClient(a.url, ADMIN_EMAIL, ADMIN_PASSWORD)
        r = op_a.http.put(
            "/api/admin/settings/widget",
            json={"allowed_origins": ["https://pair-shop.example"], "greeting": "Добрый день!"},
        )
        assert r.status_code == 200, r.text
        frame = await ws_b.until("settings_changed")
        assert frame["settings"]["allowed_origins"] == ["https://pair-shop.example"]
        # B reloads beside the frame it relays: its next answers carry the new settings.
        wait_until(
            lambda: (
                "https://pair-shop.example"
                in httpx.get(f"{b.url}/widget/frame.html").headers["content-security-policy"]
            ),
            5,
            "process B's frame-ancestors to follow the save on A",
        )
        site = httpx.get(
            f"{b.url}/api/support/site", headers={"Origin": "https://pair-shop.example"}
        )
        assert site.json() == {"allowed": True}
        v = VisitorClient(b.url)
        v.send("Вопрос на процессе B")
        assert v.messages()["messages"][0]["message"] == "Добрый день!"

    run(go())


def test_concurrent_writers_on_both_processes_lose_nothing_and_keep_order(
    pair: tuple[ServerProcess, ServerProcess, Redis],
) -> None:
    """Customer sends on A and operator replies on B, at once, each one retried at once:
    no send fails (no deadlock between the ticket, visitor and message locks), a retry
    stores nothing new, and the customer's socket gets every message once, in id order,
    exactly what a resume from the same point reads from the database."""
    a, b, _ = pair

    async def go() -> None:
        v = VisitorClient(a.url)
        ticket = v.send("начало")["ticketId"]
        op_http = OperatorClient(b.url, ADMIN_EMAIL, ADMIN_PASSWORD)
        await asyncio.to_thread(op_http.open, ticket)
        vs, _ = await visitor_socket(a.ws_url, v.token, ticket, 0)
        start = (await vs.messages(2))[-1]["id"]
        jobs = []
        for i in range(12):
            for _ in range(2):  # the same send twice, concurrently: a retry
                jobs.append(asyncio.to_thread(v.send, f"клиент {i}", f"v-{i}"))
                jobs.append(
                    asyncio.to_thread(
                        op_http.reply, ticket, f"оператор {i}", client_msg_id=f"o-{i}"
                    )
                )
        results = await asyncio.gather(*jobs)
        ids = [r["message"]["id"] if "ticketId" in r else r["id"] for r in results]
        assert ids[0::4] == ids[2::4] and ids[1::4] == ids[3::4], "a retry stored a second copy"
        stored = v.messages(after=start)["messages"]
        texts = [m["message"] for m in stored]
        for i in range(12):
            assert texts.count(f"клиент {i}") == 1 and texts.count(f"оператор {i}") == 1
        live = await vs.messages(len(stored), timeout=15)
        assert [m["id"] for m in live] == [m["id"] for m in stored]
        assert [m["id"] for m in live] == sorted({m["id"] for m in live})
        assert [f for f in await vs.quiet(0.5) if f["type"] == "message"] == []
        await vs.close()
        resumed, _ = await visitor_socket(a.ws_url, v.token, ticket, start)
        again = await resumed.messages(len(stored))
        assert [m["id"] for m in again] == [m["id"] for m in stored]
        await resumed.close()

    run(go())


def test_dashboards_on_both_processes_get_every_message_once_across_a_resume(
    pair: tuple[ServerProcess, ServerProcess, Redis],
) -> None:
    """Customers on A and B write at once on several tickets (no lock is shared by their
    messages: ids commit out of order). A dashboard on each process gets every message
    exactly once, and one that reconnects half-way with `since` = the last message it got
    misses nothing and gets nothing twice (store/stream.py)."""
    a, b, _ = pair

    def ids(sock: Any) -> list[int]:
        return [f["message"]["id"] for f in sock.frames if f["type"] == "message"]

    async def collect(sock: Any, want: set[int], have: list[int]) -> None:
        while not want <= set(have + ids(sock)):
            await sock.until("message", timeout=15)

    async def go() -> None:
        op_a = OperatorClient(a.url, ADMIN_EMAIL, ADMIN_PASSWORD)
        op_b = OperatorClient(b.url, ADMIN_EMAIL, ADMIN_PASSWORD)
        visitors = [VisitorClient(srv.url) for srv in (a, b) for _ in range(3)]
        tickets = [v.send("начало")["ticketId"] for v in visitors]
        start = max(v.messages()["messages"][-1]["id"] for v in visitors)
        da, _ = await operator_socket(a.ws_url, op_a.http.cookies["td_session"], a.url, start)
        db, _ = await operator_socket(b.ws_url, op_b.http.cookies["td_session"], b.url, start)

        async def burst(tag: str) -> None:
            await asyncio.gather(
                *(
                    asyncio.to_thread(v.send, f"{tag} {n} {i}", f"{tag}-{n}-{i}")
                    for n, v in enumerate(visitors)
                    for i in range(6)
                )
            )

        def stored_now() -> set[int]:
            return {
                m["id"]
                for v, t in zip(visitors, tickets, strict=True)
                for m in v.messages(after=start, ticket_id=t)["messages"]
            }

        await burst("первая")
        await collect(db, stored_now(), [])
        more = asyncio.create_task(burst("вторая"))
        for _ in range(5):  # B's dashboard goes away in the middle of the second burst
            await db.until("message", timeout=15)
        await db.close()
        got_b = ids(db)
        db2, _ = await operator_socket(b.ws_url, op_b.http.cookies["td_session"], b.url, got_b[-1])
        await more
        stored = stored_now()
        assert len(stored) == len(visitors) * 12
        await collect(da, stored, [])
        await collect(db2, stored, got_b)
        assert [f for f in await da.quiet(0.5) if f["type"] == "message"] == []
        assert [f for f in await db2.quiet(0.5) if f["type"] == "message"] == []
        on_a, on_b = ids(da), got_b + ids(db2)
        assert len(on_a) == len(set(on_a)) and len(on_b) == len(set(on_b)), "sent twice"
        assert set(on_a) == stored and set(on_b) == stored
        await da.close()
        await db2.close()

    run(go())


def test_redis_outage_loses_nothing_and_fanout_recovers(
    pair: tuple[ServerProcess, ServerProcess, Redis],
) -> None:
    a, b, redis = pair

    async def go() -> None:
        v = VisitorClient(b.url)
        ticket = v.send("перед сбоем Redis")["ticketId"]
        op_http = OperatorClient(a.url, ADMIN_EMAIL, ADMIN_PASSWORD)
        vs, _ = await visitor_socket(b.ws_url, v.token, ticket, 0)
        seen = await vs.messages(2)
        last = seen[-1]["id"]
        await vs.close()
        redis.stop()
        try:
            # Redis is down: replies are still stored (on A) ...
            for i in range(3):
                await asyncio.to_thread(op_http.reply, ticket, f"во время сбоя {i}")
            # ... and the visitor (on B) gets them after reconnecting, from the database.
            vs, _ = await visitor_socket(b.ws_url, v.token, ticket, last)
            got = await vs.messages(4)
            assert [m["message"] for m in got[1:]] == [f"во время сбоя {i}" for i in range(3)]
            last = got[-1]["id"]
        finally:
            redis.start()
        # Fan-out recovers: a live reply from A reaches the socket on B without reconnecting.
        deadline = asyncio.get_running_loop().time() + 30
        n = 0
        while True:
            n += 1
            await asyncio.to_thread(op_http.reply, ticket, f"после сбоя {n}")
            try:
                f = await vs.until("message", timeout=1.5)
                break
            except TimeoutError:
                assert asyncio.get_running_loop().time() < deadline, "fan-out did not recover"
                await vs.send({"type": "ping"})
        assert f["message"]["message"].startswith("после сбоя")
        await vs.close()
        # Nothing lost, nothing twice.
        texts = v.texts()
        assert all(texts.count(f"во время сбоя {i}") == 1 for i in range(3))

    run(go())
