"""The socket guarantees, over real WebSockets to a real server process (SQLite)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.support.clients import OperatorClient, VisitorClient
from tests.support.server import ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, ServerProcess
from tests.support.wsclient import operator_socket, visitor_socket


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(
        tmp_path_factory.mktemp("sockets"),
        extra_env={"TRUSTDESK_HELLO_TIMEOUT_SECONDS": "1", "TRUSTDESK_TYPING_TTL_SECONDS": "1"},
    )
    srv.create_operator(ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def operator(server: ServerProcess) -> OperatorClient:
    return OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_send_over_socket_and_receive_replies_live(
    server: ServerProcess, operator: OperatorClient
) -> None:
    async def go() -> None:
        v = VisitorClient(server.url)
        sock, ready = await visitor_socket(server.ws_url, v.token)
        assert ready["ticketId"] is None
        await sock.send({"type": "send", "message": "Здравствуйте", "client_msg_id": "a1"})
        ack = await sock.until("ack")
        ticket = ack["ticketId"]
        assert ack["message"]["message"] == "Здравствуйте"
        kinds = [(f["message"]["sender_type"]) for f in sock.frames if f["type"] == "message"]
        assert kinds == ["bot", "customer"]
        await asyncio.to_thread(operator.open, ticket)
        await asyncio.to_thread(operator.reply, ticket, "Добрый день!")
        got = await sock.messages(2)
        assert [m["message"] for m in got] == [
            "👨‍💼 Оператор Артём подключился к диалогу",
            "Добрый день!",
        ]
        ids = [f["message"]["id"] for f in sock.frames if f["type"] == "message"]
        assert ids == sorted(set(ids))
        await sock.close()

    run(go())


def test_resume_delivers_exactly_the_missed_messages(
    server: ServerProcess, operator: OperatorClient
) -> None:
    async def go() -> None:
        v = VisitorClient(server.url)
        ticket = v.send("начало")["ticketId"]
        sock, _ = await visitor_socket(server.ws_url, v.token, ticket, 0)
        seen = await sock.messages(2)
        last = seen[-1]["id"]
        await sock.close()
        for i in range(5):
            await asyncio.to_thread(operator.reply, ticket, f"пропущено {i}")
        sock, _ = await visitor_socket(server.ws_url, v.token, ticket, last)
        missed = await sock.messages(6)  # the join notice + 5 replies
        assert [m["message"] for m in missed[1:]] == [f"пропущено {i}" for i in range(5)]
        assert all(m["id"] > last for m in missed)
        assert [m["id"] for m in missed] == sorted({m["id"] for m in missed})
        assert [f for f in await sock.quiet() if f["type"] == "message"] == []
        await sock.close()

    run(go())


def test_live_delivery_across_interleaved_tickets_and_notes(
    server: ServerProcess, operator: OperatorClient
) -> None:
    """Messages go straight from the event to the socket when the ticket's previous message
    was sent; ids of other tickets and private notes in between must neither block, leak,
    nor reorder anything (the socket fills a real gap from the database)."""

    async def go() -> None:
        a, b = VisitorClient(server.url), VisitorClient(server.url)
        ta, tb = a.send("A: начало")["ticketId"], b.send("B: начало")["ticketId"]
        await asyncio.to_thread(operator.open, ta)
        await asyncio.to_thread(operator.open, tb)
        sa, _ = await visitor_socket(server.ws_url, a.token, ta, 0)
        sb, _ = await visitor_socket(server.ws_url, b.token, tb, 0)
        before_a = len(await sa.messages(3))  # greeting, customer, join notice
        before_b = len(await sb.messages(3))
        assert before_a == before_b == 3
        sent_a, sent_b = [], []
        for i in range(4):
            await asyncio.to_thread(operator.reply, ta, f"A{i}")
            sent_a.append(f"A{i}")
            if i % 2 == 0:
                r = operator.post("/api/admin/support/note", {"ticketId": ta, "message": f"N{i}"})
                assert r.status_code == 200, r.text
            await asyncio.to_thread(operator.reply, tb, f"B{i}")
            sent_b.append(f"B{i}")
        # The customer writes in between: its own frame comes before the ack, in order.
        await sa.send({"type": "send", "message": "A: ещё", "client_msg_id": "a-more"})
        sent_a.append("A: ещё")
        await sa.until("ack")
        got_a = [f["message"] for f in sa.frames if f["type"] == "message"][before_a:]
        got_b = await sb.messages(4)
        assert [m["message"] for m in got_a] == sent_a
        assert [m["message"] for m in got_b] == sent_b
        for sock in (sa, sb):
            ids = [f["message"]["id"] for f in sock.frames if f["type"] == "message"]
            assert ids == sorted(set(ids))
            assert all(f["message"]["kind"] != "note" for f in sock.frames if "message" in f)
        assert [f for f in await sa.quiet() if f["type"] == "message"] == []
        await sa.close()
        await sb.close()

    run(go())


def test_dashboard_ticket_frames_carry_each_operators_unread_count(
    server: ServerProcess, operator: OperatorClient
) -> None:
    """Every dashboard gets the ticket's summary after each change, with its own unread
    count (computed once per batch for all the sockets of the process)."""

    async def go() -> None:
        second = "second@trust.store"
        r = operator.post(
            "/api/admin/operators",
            {"email": second, "name": "Мария", "password": "pass-word-2345", "role": "agent"},
        )
        assert r.status_code in (200, 201), r.text
        other = OperatorClient(server.url, second, "pass-word-2345")
        v = VisitorClient(server.url)
        ticket = v.send("первое")["ticketId"]
        await asyncio.to_thread(operator.open, ticket)  # Артём has read it all
        socks = []
        for client in (operator, other):
            cookie = client.http.cookies["td_session"]
            sock, _ = await operator_socket(server.ws_url, cookie, server.url)
            socks.append(sock)
        v.send("второе")

        def summary_for(sock: Any) -> Any:
            return sock.until(
                lambda f: (
                    f["type"] == "ticket"
                    and f["ticket"]["ticketId"] == ticket
                    and f["ticket"]["last_message"]["message"] == "второе"
                )
            )

        mine, theirs = [(await summary_for(s))["ticket"] for s in socks]
        assert mine["unread"] == 1  # only what came after Артём opened it
        assert theirs["unread"] == 2  # Мария never opened it
        assert mine["customer_last_read_id"] == theirs["customer_last_read_id"] > 0
        for s in socks:
            await s.close()

    run(go())


def test_a_reply_gives_the_widget_a_receipt_and_the_dashboards_a_summary(
    server: ServerProcess, operator: OperatorClient
) -> None:
    """After a reply the customer sees their messages read; every dashboard gets the reply
    and the ticket's new summary (the operator's unread back to 0), and no `read` frame:
    the summary says it, and each reply would otherwise cost one frame per dashboard."""

    async def go() -> None:
        v = VisitorClient(server.url)
        ticket = v.send("есть вопрос")["ticketId"]
        vsock, _ = await visitor_socket(server.ws_url, v.token, ticket, 0)
        await vsock.messages(2)
        osock, _ = await operator_socket(
            server.ws_url, operator.http.cookies["td_session"], server.url
        )
        first = len(osock.frames)
        reply = await asyncio.to_thread(operator.reply, ticket, "отвечаю")
        summary = await osock.until(
            lambda f: (
                f["type"] == "ticket"
                and f["ticket"]["ticketId"] == ticket
                and f["ticket"]["last_message"]["message"] == "отвечаю"
            )
        )
        assert summary["ticket"]["unread"] == 0
        kinds = [f["type"] for f in osock.frames[first:]]
        assert "message" in kinds and "read" not in kinds, kinds
        receipt = await vsock.until("read")
        assert receipt["reader"] == "admin" and receipt["last_read_id"] >= reply["id"]
        await osock.close()
        await vsock.close()

    run(go())


def test_retried_socket_send_stores_one_message(server: ServerProcess) -> None:
    async def go() -> None:
        v = VisitorClient(server.url)
        sock, _ = await visitor_socket(server.ws_url, v.token)
        await sock.send({"type": "send", "message": "один", "client_msg_id": "same"})
        first = await sock.until("ack")
        await sock.close()
        sock, _ = await visitor_socket(server.ws_url, v.token, first["ticketId"], 0)
        await sock.send({"type": "send", "message": "один", "client_msg_id": "same"})
        second = await sock.until("ack")
        assert first["message"]["id"] == second["message"]["id"]
        v.ticket_id = first["ticketId"]
        assert v.texts().count("один") == 1
        await sock.close()

    run(go())


def test_operator_replies_over_the_socket(server: ServerProcess, operator: OperatorClient) -> None:
    """The dashboard can reply on its socket: acked with the stored message, delivered to
    the widget, idempotent on client_msg_id (a retry over HTTP too), notes stay private,
    refusals name the send."""

    async def go() -> None:
        v = VisitorClient(server.url)
        ticket = v.send("Где мой заказ?")["ticketId"]
        vsock, _ = await visitor_socket(server.ws_url, v.token, ticket, 0)
        assert [m["sender_type"] for m in await vsock.messages(2)] == ["bot", "customer"]
        cookie = operator.http.cookies["td_session"]
        osock, _ = await operator_socket(server.ws_url, cookie, server.url)
        send = {"type": "send", "ticketId": ticket, "message": "Уже в пути", "client_msg_id": "r1"}
        await osock.send(send)
        ack = await osock.until("ack")
        assert ack["client_msg_id"] == "r1" and ack["ticketId"] == ticket
        assert ack["message"]["message"] == "Уже в пути"
        assert ack["message"]["sender_type"] == "admin"
        got = [m["message"] for m in await vsock.messages(2)]
        assert got == ["👨‍💼 Оператор Артём подключился к диалогу", "Уже в пути"]
        await osock.send(send)  # the same send again: the same message, nothing new
        again = await osock.until("ack")
        assert again["message"]["id"] == ack["message"]["id"]
        r = operator.post(
            "/api/admin/support/reply",
            {"ticketId": ticket, "message": "Уже в пути", "client_msg_id": "r1"},
        )
        assert r.status_code == 200 and r.json()["message"]["id"] == ack["message"]["id"]
        note = {**send, "message": "клиент нервничает", "client_msg_id": "n1", "note": True}
        await osock.send(note)
        assert (await osock.until("ack"))["message"]["kind"] == "note"
        await osock.send({**send, "ticketId": "TKT-0-NONE", "client_msg_id": "x1"})
        err = await osock.until("error")
        assert err["code"] == "ticket_not_found" and err["client_msg_id"] == "x1"
        await osock.send({**send, "message": "   ", "client_msg_id": "x2"})
        err = await osock.until("error")
        assert err["code"] == "empty_message" and err["client_msg_id"] == "x2"
        assert [f for f in await vsock.quiet() if f["type"] == "message"] == []
        texts = [m["message"] for m in operator.open(ticket)["messages"]]
        assert texts.count("Уже в пути") == 1
        await osock.close()
        await vsock.close()

    run(go())


def test_typing_and_presence_expire_when_a_client_dies(
    server: ServerProcess, operator: OperatorClient
) -> None:
    async def go() -> None:
        v = VisitorClient(server.url)
        ticket = v.send("hi")["ticketId"]
        op, _ = await operator_socket(
            server.ws_url, operator.http.cookies["td_session"], server.url
        )
        sock, _ = await visitor_socket(server.ws_url, v.token, ticket, 0)
        online = await op.until(lambda f: f["type"] == "presence" and f.get("kind") == "visitor")
        assert online["online"] is True and online["ticketId"] == ticket
        await sock.send({"type": "typing", "active": True})
        t = await op.until("typing")
        assert t["active"] is True and t["ticketId"] == ticket and t["sender_type"] == "customer"
        # The client never says "stopped": the server expires it by itself (TTL 1 s here).
        t = await op.until("typing", timeout=5)
        assert t["active"] is False
        # A crashed client: the TCP connection just drops.
        await sock.send({"type": "typing", "active": True})
        await op.until(lambda f: f["type"] == "typing" and f["active"])
        sock.conn.transport.abort()  # type: ignore[attr-defined]
        t = await op.until("typing", timeout=5)
        assert t["active"] is False
        gone = await op.until(lambda f: f["type"] == "presence" and f.get("kind") == "visitor")
        assert gone["online"] is False
        await op.close()

    run(go())


def test_bad_frames_get_an_error_never_a_crash(server: ServerProcess) -> None:
    async def go() -> None:
        v = VisitorClient(server.url)
        sock, _ = await visitor_socket(server.ws_url, v.token)
        await sock.conn.send("not json")
        assert (await sock.until("error"))["code"] == "bad_frame"
        await sock.send({"type": "launch-missiles"})
        assert (await sock.until("error"))["code"] == "unknown_type"
        await sock.send({"type": "send", "message": 5, "client_msg_id": "x"})
        assert (await sock.until("error"))["code"] == "invalid_message"
        await sock.send({"type": "send", "message": "   ", "client_msg_id": "y"})
        assert (await sock.until("error"))["code"] == "empty_message"
        await sock.send({"type": "send", "message": "a" * 70_000, "client_msg_id": "z"})
        assert (await sock.until("error"))["code"] == "frame_too_large"
        await sock.send({"type": "ping"})
        await sock.until("pong")
        # Far over the limit: the server closes the socket, and stays up.
        try:
            await sock.conn.send("x" * 2_000_000)
            await sock.until("never", timeout=5)
        except ConnectionClosed:
            pass
        assert httpx.get(server.url + "/healthz").status_code == 200
        assert v.send("всё ещё работает")["message"]["id"] > 0

    run(go())


def test_socket_without_hello_is_closed(server: ServerProcess) -> None:
    async def go() -> None:
        conn = await websockets.connect(server.ws_url + "/ws/visitor")
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(conn.recv(), 5)
        assert conn.close_code == 4408

    run(go())


def test_visitor_socket_refuses_bad_token_and_foreign_ticket(server: ServerProcess) -> None:
    async def go() -> None:
        alice, mallory = VisitorClient(server.url), VisitorClient(server.url)
        ticket = alice.send("личное")["ticketId"]
        conn = await websockets.connect(server.ws_url + "/ws/visitor")
        await conn.send('{"type":"hello","token":"nope","ticketId":null,"since":0}')
        with pytest.raises(ConnectionClosed):
            while True:
                await asyncio.wait_for(conn.recv(), 5)
        assert conn.close_code == 4401
        conn = await websockets.connect(server.ws_url + "/ws/visitor")
        await conn.send(
            f'{{"type":"hello","token":"{mallory.token}","ticketId":"{ticket}","since":0}}'
        )
        frames = []
        with pytest.raises(ConnectionClosed):
            while True:
                frames.append(await asyncio.wait_for(conn.recv(), 5))
        assert conn.close_code == 4404
        assert not any("личное" in f for f in frames)

    run(go())


def test_operator_socket_checks_origin_and_session(
    server: ServerProcess, operator: OperatorClient
) -> None:
    async def go() -> None:
        cookie = operator.http.cookies["td_session"]
        with pytest.raises(InvalidStatus) as e:
            await operator_socket(server.ws_url, cookie, "https://evil.example")
        assert e.value.response.status_code == 403
        with pytest.raises(InvalidStatus):
            await operator_socket(server.ws_url, "forged-session", server.url)
        sock, ready = await operator_socket(server.ws_url, cookie, server.url)
        assert any(o["name"] == "Артём" for o in ready["operators"])
        # Logging out ends the open socket within seconds.
        await asyncio.to_thread(operator.post, "/api/admin/logout")
        with pytest.raises(ConnectionClosed):
            await sock.until("never", timeout=10)

    run(go())


def test_long_poll_returns_as_soon_as_a_message_exists(
    server: ServerProcess, operator: OperatorClient
) -> None:
    v = VisitorClient(server.url)
    ticket = v.send("жду")["ticketId"]
    last = v.messages()["messages"][-1]["id"]
    empty = v.http.get(f"/api/support/messages/{ticket}", params={"after": last, "wait": 1})
    assert empty.status_code == 200 and empty.json()["messages"] == []

    async def go() -> tuple[dict[str, Any], float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        poll = asyncio.create_task(
            asyncio.to_thread(
                v.http.get, f"/api/support/messages/{ticket}", params={"after": last, "wait": 25}
            )
        )
        await asyncio.sleep(0.3)  # let the poll start waiting (not synchronisation of the result)
        await asyncio.to_thread(operator.reply, ticket, "ответ через long poll")
        r = await poll
        return r.json(), loop.time() - start

    body, took = run(go())
    assert "ответ через long poll" in [m["message"] for m in body["messages"]]
    assert took < 10


def test_server_restart_loses_nothing(tmp_path_factory: pytest.TempPathFactory) -> None:
    srv = ServerProcess(tmp_path_factory.mktemp("restart"))
    srv.create_operator(ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD)
    srv.start()
    try:
        v = VisitorClient(srv.url)
        ticket = v.send("до перезапуска")["ticketId"]
        op = OperatorClient(srv.url, ADMIN_EMAIL, ADMIN_PASSWORD)

        async def before() -> int:
            sock, _ = await visitor_socket(srv.ws_url, v.token, ticket, 0)
            got = await sock.messages(2)
            await asyncio.to_thread(op.reply, ticket, "один")
            got += await sock.messages(2)
            return int(got[-1]["id"])

        last = run(before())
        op.reply(ticket, "два (клиент не успел получить)")
        srv.kill()
        srv.start()
        op.reply(ticket, "три (после перезапуска)")

        async def after() -> list[str]:
            sock, _ = await visitor_socket(srv.ws_url, v.token, ticket, last)
            got = await sock.messages(2)
            assert [f for f in await sock.quiet() if f["type"] == "message"] == []
            return [m["message"] for m in got]

        assert run(after()) == ["два (клиент не успел получить)", "три (после перезапуска)"]
        texts = v.texts()
        assert len(texts) == len(set(texts))
    finally:
        srv.stop()
