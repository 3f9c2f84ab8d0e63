"""A visitor sees their own conversations and nothing else (IDOR).

Mallory has a valid visitor token of her own. She knows (or guesses) Alice's ticket
number and file id, and Alice's name and email. She tries every visitor endpoint and the
visitor socket with them. Every attempt is a 404 that looks exactly like a ticket that
does not exist, nothing of Alice's reaches her, and Alice's data is unchanged.

`test_every_visitor_endpoint_is_covered` fails when a visitor endpoint is added without
an attack here.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.security.conftest import start_server
from tests.support.clients import OperatorClient, VisitorClient
from tests.support.inspect_db import messages_of, query
from tests.support.payloads import png
from tests.support.server import ADMIN_EMAIL, ADMIN_PASSWORD, ServerProcess
from tests.support.services import free_port
from tests.support.wsclient import visitor_socket

IDENTITY_SECRET = "shop-identity-secret-for-tests"  # noqa: S105 - test fixture
ALICE_EMAIL = "alice@example.com"
ALICE_NAME = "Алиса Петрова"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(
        tmp_path_factory,
        "isolation",
        extra_env={
            "TRUSTDESK_IDENTITY_SECRET": IDENTITY_SECRET,
            "TRUSTDESK_LONG_POLL_MAX_SECONDS": "1",
            # Email "on" (transcripts are checked for ownership), to a port nobody serves.
            "TRUSTDESK_SMTP_HOST": "127.0.0.1",
            "TRUSTDESK_SMTP_PORT": str(free_port()),
        },
    )
    yield srv
    srv.stop()


def sign(user_id: str, expires: int) -> str:
    return hmac.new(
        IDENTITY_SECRET.encode(), f"{user_id}:{expires}".encode(), hashlib.sha256
    ).hexdigest()


class Alice:
    """A signed-in customer with a conversation, a closed ticket and a file."""

    def __init__(self, server: ServerProcess) -> None:
        self.v = VisitorClient(server.url)
        expires = int(time.time()) + 3600
        r = self.v.http.post(
            "/api/support/identify",
            json={
                "user_id": "shop-user-42",
                "expires": expires,
                "hash": sign("shop-user-42", expires),
                "name": ALICE_NAME,
                "email": ALICE_EMAIL,
            },
        )
        assert r.status_code == 200, r.text
        self.closed = self.v.send("мой старый заказ 1001")["ticketId"]
        op = OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)
        op.close(self.closed)
        self.v.ticket_id = None
        r = self.v.http.post(
            "/api/support/send-message",
            json={"message": "мой адрес: ул. Ленина 1", "new_ticket": True},
        )
        assert r.status_code == 200, r.text
        self.ticket = r.json()["ticketId"]
        self.v.ticket_id = self.ticket
        r = self.v.http.post(
            "/api/support/upload",
            params={"ticketId": self.ticket, "name": "паспорт.png"},
            content=png(),
            headers={"Content-Type": "application/octet-stream"},
        )
        assert r.status_code == 200, r.text
        self.file_message = r.json()["message"]
        self.file_id = self.file_message["attachment"]["id"]
        op.reply(self.ticket, "Ваш заказ в пути")


def _file_id(m: dict[str, Any]) -> str:
    return str(m["attachment"]["id"])


# (method, path, json body, query) with {T} = Alice's open ticket, {C} = her closed one,
# {F} = her file id. Every one must be a 404 for Mallory.
ATTACKS: list[tuple[str, str, dict[str, Any] | None, dict[str, Any] | None]] = [
    ("GET", "/api/support/messages/{T}", None, None),
    ("GET", "/api/support/messages/{T}", None, {"after": 0, "wait": 1}),
    ("GET", "/api/support/messages/{C}", None, None),
    ("POST", "/api/support/send-message", {"message": "взлом", "ticketId": "{T}"}, None),
    ("POST", "/api/support/send-message", {"message": "взлом", "ticketId": "{C}"}, None),
    ("POST", "/api/support/read", {"ticketId": "{T}", "last_read_id": 10**6}, None),
    ("POST", "/api/support/rate", {"ticketId": "{C}", "score": 1, "comment": "плохо"}, None),
    ("POST", "/api/support/transcript", {"ticketId": "{T}", "email": "m@evil.example"}, None),
    ("POST", "/api/support/upload", None, {"ticketId": "{T}", "name": "x.png"}),
    ("GET", "/api/support/files/{F}", None, None),
    # What the help center suggested, said of someone else's ticket (actions/kb.py).
    ("POST", "/api/support/kb/feedback", {"query": "доставка", "ticketId": "{T}"}, None),
]
# Endpoints that take no ticket or file (checked by the tests below in other ways).
NO_TARGET = {
    ("POST", "/api/support/session"),
    ("GET", "/api/support/status"),
    ("GET", "/api/support/site"),  # "may this page embed the chat": no visitor, no ticket
    ("GET", "/api/support/tickets"),
    ("POST", "/api/support/contact"),
    ("POST", "/api/support/identify"),
    # The help center: published articles, public at /help anyway.
    ("GET", "/api/support/kb/search"),
    ("GET", "/api/support/kb/articles/{article_id}"),
}


def _fill(value: Any, alice: Alice) -> Any:
    if isinstance(value, str):
        return (
            value.replace("{T}", alice.ticket)
            .replace("{C}", alice.closed)
            .replace("{F}", alice.file_id)
        )
    if isinstance(value, dict):
        return {k: _fill(v, alice) for k, v in value.items()}
    return value


def snapshot(server: ServerProcess, alice: Alice) -> dict[str, Any]:
    return {
        "messages": messages_of(server, alice.ticket) + messages_of(server, alice.closed),
        "tickets": query(
            server,
            "SELECT number, status, rating, visitor_id FROM tickets WHERE number IN ($1, $2) "
            "ORDER BY number",
            alice.ticket,
            alice.closed,
        ),
        "cursors": query(
            server,
            "SELECT r.ticket_id, r.reader, r.last_read_id FROM read_cursors r JOIN tickets t "
            "ON t.id = r.ticket_id WHERE t.number IN ($1, $2) ORDER BY 1, 2",
            alice.ticket,
            alice.closed,
        ),
        "visitor": query(
            server,
            "SELECT v.id, v.name, v.email, v.external_id FROM visitors v JOIN tickets t "
            "ON t.visitor_id = v.id WHERE t.number = $1",
            alice.ticket,
        ),
    }


def test_every_visitor_endpoint_is_covered(server: ServerProcess) -> None:
    spec = httpx.get(server.url + "/api/openapi.json").json()
    visitor_ops = {
        (m.upper(), p)
        for p, ops in spec["paths"].items()
        if p.startswith("/api/support/")
        for m in ops
    }

    def template(path: str) -> str:
        return (
            path.replace("{T}", "{ticketId}")
            .replace("{C}", "{ticketId}")
            .replace("{F}", "{file_id}")
        )

    covered = {(m, template(p)) for m, p, _, _ in ATTACKS} | NO_TARGET
    assert visitor_ops - covered == set(), "add an attack for the new visitor endpoint"


def test_another_visitors_token_opens_nothing(server: ServerProcess) -> None:
    alice = Alice(server)
    before = snapshot(server, alice)
    mallory = VisitorClient(server.url)
    nobody = "TKT-1700000000-ZZZZ"
    for method, path, body, params in ATTACKS:
        url = _fill(path, alice)
        kw: dict[str, Any] = {"params": _fill(params, alice)}
        if path.endswith("/upload"):
            kw["content"] = png()
            kw["headers"] = {"Content-Type": "application/octet-stream"}
        elif body is not None:
            kw["json"] = _fill(body, alice)
        r = mallory.http.request(method, url, **kw)
        assert r.status_code == 404, (method, url, r.status_code, r.text)
        # Exactly what a ticket (or file) that does not exist looks like: no oracle.
        ghost = mallory.http.request(
            method,
            url.replace(alice.ticket, nobody)
            .replace(alice.closed, nobody)
            .replace(alice.file_id, "0" * 32),
            **{
                **kw,
                **(
                    {
                        "json": {
                            k: (nobody if v in (alice.ticket, alice.closed) else v)
                            for k, v in kw["json"].items()
                        }
                    }
                    if "json" in kw
                    else {}
                ),
                "params": {
                    k: (nobody if v in (alice.ticket, alice.closed) else v)
                    for k, v in (kw["params"] or {}).items()
                },
            },
        )
        assert (ghost.status_code, ghost.json()) == (r.status_code, r.json()), (method, path)
        assert "Ленина" not in r.text and "паспорт" not in r.text
    # Her own list shows nothing of Alice's.
    r = mallory.http.get("/api/support/tickets")
    assert r.status_code == 200 and r.json()["tickets"] == []
    # Mallory's own first message starts her own ticket, never lands in Alice's.
    own = mallory.send("мой вопрос")
    assert own["ticketId"] not in (alice.ticket, alice.closed)
    assert snapshot(server, alice) == before


def test_same_name_or_email_gets_no_history(server: ServerProcess) -> None:
    alice = Alice(server)
    before = snapshot(server, alice)
    mallory = VisitorClient(
        server.url,
    )
    # She says she is Alice, in every place a visitor can give a name or an email.
    r = mallory.http.post("/api/support/contact", json={"email": ALICE_EMAIL, "name": ALICE_NAME})
    assert r.status_code == 200, r.text
    r = mallory.http.post(
        "/api/support/send-message",
        json={"message": "это я, Алиса", "name": ALICE_NAME, "email": ALICE_EMAIL},
    )
    assert r.status_code == 200
    mine = r.json()["ticketId"]
    assert mine not in (alice.ticket, alice.closed)
    body = mallory.http.get(f"/api/support/messages/{mine}").json()
    assert all("Ленина" not in m["message"] for m in body["messages"])
    assert [t["ticketId"] for t in mallory.http.get("/api/support/tickets").json()["tickets"]] == [
        mine
    ]
    # A signed identity needs the shop's secret: Alice's user id with a forged, a reused
    # (other user's) or an expired signature is refused, and she stays anonymous.
    now = int(time.time())
    for user_id, expires, sig in (
        ("shop-user-42", now + 3600, "0" * 64),
        ("shop-user-42", now + 3600, sign("shop-user-43", now + 3600)),
        ("shop-user-42", now + 7200, sign("shop-user-42", now + 3600)),
        ("shop-user-42", now - 10, sign("shop-user-42", now - 10)),
    ):
        r = mallory.http.post(
            "/api/support/identify",
            json={"user_id": user_id, "expires": expires, "hash": sig, "email": ALICE_EMAIL},
        )
        assert r.status_code == 401, r.text
    assert [t["ticketId"] for t in mallory.http.get("/api/support/tickets").json()["tickets"]] == [
        mine
    ]
    for t in (alice.ticket, alice.closed):
        assert mallory.http.get(f"/api/support/messages/{t}").status_code == 404
    assert snapshot(server, alice) == before


def test_ticket_numbers_and_ids_are_not_credentials(server: ServerProcess) -> None:
    alice = Alice(server)
    mallory = VisitorClient(server.url)
    # Guessing: Alice's number, its neighbours in time and suffix, the internal id, the
    # visitor id, and odd spellings. All 404 (or 422 for what is not even a number).
    internal = query(server, "SELECT id, visitor_id FROM tickets WHERE number = $1", alice.ticket)
    tid, vid = internal[0]
    stamp = int(alice.ticket.split("-")[1])
    guesses = [
        alice.ticket,
        alice.ticket.lower(),
        f" {alice.ticket}",
        alice.ticket + "%",
        tid,
        vid,
        "TKT-%",
        "%",
        "*",
        *(f"TKT-{stamp + d}-{s}" for d in (-1, 0, 1) for s in ("0000", "AAAA", "ZZZZ")),
    ]
    for g in guesses:
        r = mallory.http.get(f"/api/support/messages/{httpx.URL(path=g).path}")
        assert r.status_code in (404, 422), (g, r.status_code, r.text)
        assert "Ленина" not in r.text
    # The visitor id (returned by /session) and the ticket number are not tokens.
    for fake in (vid, alice.ticket, tid, alice.v.visitor_id):
        r = httpx.get(
            f"{server.url}/api/support/messages/{alice.ticket}",
            headers={"Authorization": f"Bearer {fake}"},
        )
        assert r.status_code == 401
    # Only a hash of the token is stored: the database does not hold the credential.
    token_rows = query(server, "SELECT token_hash FROM visitors WHERE id = $1", vid)
    assert token_rows[0][0] == hashlib.sha256(alice.v.token.encode()).hexdigest()
    assert query(server, "SELECT id FROM visitors WHERE token_hash = $1", alice.v.token) == []


def test_visitor_socket_with_another_token_gets_nothing(server: ServerProcess) -> None:
    alice = Alice(server)
    mallory = VisitorClient(server.url)
    own = mallory.send("мой вопрос")["ticketId"]
    op = OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)

    async def go() -> None:
        # Following Alice's ticket with Mallory's token: closed with 4404, nothing sent.
        for ticket in (alice.ticket, alice.closed):
            conn = await websockets.connect(server.ws_url + "/ws/visitor")
            await conn.send(
                f'{{"type":"hello","token":"{mallory.token}","ticketId":"{ticket}","since":0}}'
            )
            frames = []
            with pytest.raises(ConnectionClosed):
                while True:
                    frames.append(await asyncio.wait_for(conn.recv(), 10))
            assert conn.close_code == 4404
            assert not any("Ленина" in f or "паспорт" in f for f in frames)
        # On her own ticket, Mallory hears nothing of Alice's conversation: Alice's events
        # happen first, then a marker in Mallory's own ticket; nothing of Alice's before it.
        sock, _ = await visitor_socket(server.ws_url, mallory.token, own, 0)
        await sock.messages(2)
        last = alice.v.messages()["messages"][-1]["id"]
        alice_sock, _ = await visitor_socket(server.ws_url, alice.v.token, alice.ticket, last)
        await alice_sock.send({"type": "typing", "active": True})
        await alice_sock.send({"type": "send", "message": "секрет Алисы", "client_msg_id": "a1"})
        await alice_sock.until("ack")
        await asyncio.to_thread(op.reply, alice.ticket, "ответ Алисе")
        await alice_sock.until(
            lambda f: f["type"] == "message" and f["message"]["message"] == "ответ Алисе"
        )
        await asyncio.to_thread(op.reply, own, "маркер")
        await sock.until(lambda f: f["type"] == "message" and f["message"]["message"] == "маркер")
        leaked = [f for f in sock.frames if alice.ticket in str(f) or "Алис" in str(f)]
        assert leaked == []
        # A send on her socket lands in her own ticket only.
        await sock.send({"type": "send", "message": "от Мэллори", "client_msg_id": "m1"})
        ack = await sock.until("ack")
        assert ack["ticketId"] == own
        await sock.close()
        await alice_sock.close()

    asyncio.run(asyncio.wait_for(go(), 90))
    assert "от Мэллори" not in [m for _, _, _, m in messages_of(server, alice.ticket)]
