"""Known customers, several tickets, nobody-there email, ratings and the report."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.clients import OperatorClient, VisitorClient
from tests.support.server import ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, ServerProcess
from tests.support.services import Postgres
from tests.support.smtp import Mailbox
from trustdesk.actions.customers import identity_signature

SHOP_SECRET = "shop-secret-for-tests"
INBOUND_SECRET = "inbound-secret-for-tests"
_n = itertools.count()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, mailbox: Mailbox
) -> Iterator[ServerProcess]:
    url = None
    if request.param == "postgres":
        pg: Postgres = request.getfixturevalue("postgres")
        url = pg.create_database(f"customers_{next(_n)}")
    srv = ServerProcess(
        tmp_path_factory.mktemp(f"customers-{request.param}"),
        database_url=url,
        extra_env={
            "TRUSTDESK_IDENTITY_SECRET": SHOP_SECRET,
            "TRUSTDESK_SMTP_HOST": "127.0.0.1",
            "TRUSTDESK_SMTP_PORT": str(mailbox.port),
            "TRUSTDESK_SMTP_STARTTLS": "false",
            "TRUSTDESK_SMTP_FROM": "Trust Store <support@trust.store>",
            "TRUSTDESK_EMAIL_REPLY_DOMAIN": "mail.trust.store",
            "TRUSTDESK_INBOUND_SECRET": INBOUND_SECRET,
        },
    )
    srv.create_operator(ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, role="admin")
    srv.start()
    yield srv
    srv.stop()


def identify(
    v: VisitorClient, user_id: str, expires: int | None = None, secret: str = SHOP_SECRET
) -> httpx.Response:
    expires = expires or int(time.time()) + 3600
    return v.http.post(
        "/api/support/identify",
        json={
            "user_id": user_id,
            "expires": expires,
            "hash": identity_signature(secret, user_id, expires),
            "name": "Иван Петров",
            "email": "ivan@example.com",
        },
    )


def test_verified_customer_sees_tickets_on_any_device(server: ServerProcess) -> None:
    uid = f"user-{next(_n)}-{time.time_ns()}"
    laptop, phone, stranger = (VisitorClient(server.url) for _ in range(3))
    assert identify(laptop, uid).json() == {"verified": True, "user_id": uid}
    ticket = laptop.send("Вопрос с ноутбука")["ticketId"]
    # Another device, same signed user: the same ticket and history.
    assert identify(phone, uid).status_code == 200
    mine = phone.http.get("/api/support/tickets").json()["tickets"]
    assert [t["ticketId"] for t in mine] == [ticket]
    phone.ticket_id = ticket
    assert "Вопрос с ноутбука" in phone.texts()
    # An anonymous browser sees only its own; a wrong or expired signature is refused.
    assert stranger.http.get("/api/support/tickets").json()["tickets"] == []
    bad = identify(stranger, uid, secret="not the shop secret")
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "identity_invalid"
    old = identify(stranger, uid, expires=int(time.time()) - 10)
    assert old.status_code == 401 and old.json()["error"]["code"] == "identity_expired"
    assert stranger.http.get(f"/api/support/messages/{ticket}").status_code == 404
    assert stranger.http.get("/api/support/tickets").json()["tickets"] == []


def test_several_tickets_open_first(
    server: ServerProcess,
) -> None:
    op = OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    v = VisitorClient(server.url)
    first = v.send("Первый вопрос")["ticketId"]
    op.close(first)
    second = v.http.post(
        "/api/support/send-message", json={"message": "Второй вопрос", "new_ticket": True}
    ).json()["ticketId"]
    third = v.http.post(
        "/api/support/send-message", json={"message": "Третий вопрос", "new_ticket": True}
    ).json()["ticketId"]
    assert len({first, second, third}) == 3
    rows = v.http.get("/api/support/tickets").json()["tickets"]
    assert [r["ticketId"] for r in rows] == [third, second, first]
    assert [r["status"] for r in rows] == ["open", "open", "closed"]
    related = op.http.get(f"/api/admin/support/ticket/{third}/related").json()["tickets"]
    assert {r["ticketId"] for r in related} == {first, second}


def test_rating_after_close_and_report(server: ServerProcess) -> None:
    op = OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    v = VisitorClient(server.url)
    ticket = v.send("Помогите")["ticketId"]
    r = v.http.post("/api/support/rate", json={"ticketId": ticket, "score": 5})
    assert r.status_code == 409  # not closed yet
    op.open(ticket)
    op.reply(ticket, "Готово")
    op.close(ticket)
    r = v.http.post(
        "/api/support/rate", json={"ticketId": ticket, "score": 4, "comment": "Быстро, спасибо"}
    )
    assert r.status_code == 200 and r.json()["rating"] == 4
    assert (
        v.http.post("/api/support/rate", json={"ticketId": ticket, "score": 9}).status_code == 422
    )
    row = next(t for t in op.tickets(status="closed") if t["ticketId"] == ticket)
    assert row["rating"] == {"score": 4, "comment": "Быстро, спасибо"}
    rep = op.http.get("/api/admin/report", params={"days": 7}).json()
    assert rep["tickets"] >= 1 and rep["ratings"] >= 1
    assert rep["first_response_seconds_median"] is not None
    assert rep["resolution_seconds_median"] is not None
    assert sum(d["tickets"] for d in rep["per_day"]) == rep["tickets"]
    other = VisitorClient(server.url)
    assert (
        other.http.post("/api/support/rate", json={"ticketId": ticket, "score": 1}).status_code
        == 404
    )


def test_nobody_there_email_both_ways(server: ServerProcess, mailbox: Mailbox) -> None:
    status = httpx.get(server.url + "/api/support/status").json()
    assert status["operators_online"] == 0 and status["away_message"]
    assert status["email_enabled"] is True
    v = VisitorClient(server.url)
    ticket = v.send("Никого нет? Оставлю email")["ticketId"]
    addr = f"anna{next(_n)}@example.com"
    assert v.http.post("/api/support/contact", json={"email": addr}).status_code == 200
    assert v.http.post("/api/support/contact", json={"email": "nope"}).status_code == 422
    before = len(mailbox.messages)
    op = OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    op.reply(ticket, "Ответим и по почте")
    mail = next(m for m in mailbox.wait_for(before + 1)[before:] if m["To"] == addr)
    assert ticket in mail["Subject"]
    assert "Ответим и по почте" in mail.get_payload(decode=True).decode()
    reply_to = mail["Reply-To"]
    assert reply_to.startswith(f"reply+{ticket}.")
    # The customer answers the email: it lands in the ticket.
    inbound = {
        "to": reply_to,
        "from": f"Anna <{addr}>",
        "subject": "Re: ...",
        "text": "Спасибо, жду!\n\nOn Mon, support wrote:\n> Ответим и по почте",
    }
    r = httpx.post(
        server.url + "/api/inbound/email",
        json=inbound,
        headers={"X-TrustDesk-Inbound-Secret": INBOUND_SECRET},
    )
    assert r.status_code == 200, r.text
    assert v.texts()[-1] == "Спасибо, жду!"
    # Without the secret, from someone else, or to a forged address: refused.
    assert httpx.post(server.url + "/api/inbound/email", json=inbound).status_code == 401
    forged = {**inbound, "from": "mallory@example.com"}
    assert (
        httpx.post(
            server.url + "/api/inbound/email",
            json=forged,
            headers={"X-TrustDesk-Inbound-Secret": INBOUND_SECRET},
        ).status_code
        == 403
    )
    guessed = {**inbound, "to": f"reply+{ticket}.{'0' * 20}@mail.trust.store"}
    assert (
        httpx.post(
            server.url + "/api/inbound/email",
            json=guessed,
            headers={"X-TrustDesk-Inbound-Secret": INBOUND_SECRET},
        ).status_code
        == 404
    )
    # The transcript, by email.
    before = len(mailbox.messages)
    r = v.http.post("/api/support/transcript", json={"ticketId": ticket})
    assert r.status_code == 200 and r.json()["sent_to"] == addr
    mail = mailbox.wait_for(before + 1)[-1]
    body = mail.get_payload(decode=True).decode()
    assert "Никого нет? Оставлю email" in body and "Спасибо, жду!" in body
