"""One customer across channels (GET /api/admin/support/ticket/{id}/related): a widget
customer who gave an address (the contact form, or a signed identity) and the same address
writing by email are shown together to the operators, with each ticket's channel and last
message; nobody else's tickets are; and the widget's own view never opens an email ticket.
Real Dovecot (IMAP) and aiosmtpd, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.api.test_email_inbox import SHOP, mail, unique_sender
from tests.support.clients import OperatorClient, VisitorClient
from tests.support.dovecot import Dovecot, dovecot_available
from tests.support.server import ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, ServerProcess
from tests.support.services import Postgres, wait_until
from tests.support.smtp import Mailbox
from trustdesk.actions.customers import identity_signature

IMAP_USER = SHOP  # the Dovecot mailbox (tests/conftest.py imap)

pytestmark = pytest.mark.skipif(not dovecot_available(), reason="dovecot-imapd not installed")

SHOP_SECRET = "history-identity-secret"
_n = itertools.count()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    mailbox: Mailbox,
    imap: Dovecot,
) -> Iterator[ServerProcess]:
    url = None
    if request.param == "postgres":
        pg: Postgres = request.getfixturevalue("postgres")
        url = pg.create_database(f"history_{next(_n)}")
    srv = ServerProcess(
        tmp_path_factory.mktemp(f"history-{request.param}"),
        database_url=url,
        extra_env={
            "TRUSTDESK_IDENTITY_SECRET": SHOP_SECRET,
            "TRUSTDESK_SMTP_HOST": "127.0.0.1",
            "TRUSTDESK_SMTP_PORT": str(mailbox.port),
            "TRUSTDESK_SMTP_STARTTLS": "false",
            "TRUSTDESK_SMTP_FROM": f"Trust Store <{SHOP}>",
            **imap.env(poll_seconds=1.0),
        },
    )
    srv.create_operator(ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, role="admin")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def operator(server: ServerProcess) -> OperatorClient:
    return OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)


def related(op: OperatorClient, number: str) -> dict[str, dict[str, Any]]:
    r = op.http.get(f"/api/admin/support/ticket/{number}/related")
    assert r.status_code == 200, r.text
    return {t["ticketId"]: t for t in r.json()["tickets"]}


def email_ticket(imap: Dovecot, op: OperatorClient, who: str, subject: str, body: str) -> str:
    """The email ticket the mail starts (a widget ticket of that address is not it)."""
    raw, _ = mail(f"Покупатель <{who}>", subject, body)
    imap.append(raw)
    found: list[str] = []

    def listed() -> bool:
        found[:] = [
            t["ticketId"]
            for t in op.tickets(status="all")
            if t["customer_email"] == who and t["channel"] == "email"
        ]
        return bool(found)

    wait_until(listed, 20, f"an email ticket from {who}")
    return found[0]


def test_widget_and_email_of_one_address_are_seen_together(
    server: ServerProcess, imap: Dovecot, operator: OperatorClient
) -> None:
    who = unique_sender("elena")
    widget = VisitorClient(server.url)
    web = widget.send("Здравствуйте, где мой заказ?")["ticketId"]
    # the address given in the widget, typed in another case
    r = widget.http.post("/api/support/contact", json={"email": who.upper(), "name": "Елена"})
    assert r.status_code == 200, r.text
    by_mail = email_ticket(imap, operator, who, "Заказ 2001", "Пишу ещё и на почту.")
    # someone else, by email and in the widget: never in Елена's history
    other = unique_sender("oleg")
    stranger = email_ticket(imap, operator, other, "Другое", "Я другой покупатель.")
    v2 = VisitorClient(server.url)
    stranger_web = v2.send("Я тоже другой")["ticketId"]
    v2.http.post("/api/support/contact", json={"email": other})

    seen = related(operator, web)
    assert set(seen) == {by_mail}
    row = seen[by_mail]
    assert row["channel"] == "email" and row["match"] == "email"
    assert row["last_message"]["message"].endswith("Пишу ещё и на почту.")
    assert row["last_message"]["sender_type"] == "customer"
    # and the other way round, from the email ticket
    back = related(operator, by_mail)
    assert set(back) == {web}
    assert back[web]["channel"] == "web"
    assert back[web]["last_message"]["message"] == "Здравствуйте, где мой заказ?"
    assert stranger not in back and stranger_web not in back
    assert set(related(operator, stranger)) == {stranger_web}

    # The widget's own view: its tickets only, an email ticket opens nothing.
    mine = widget.http.get("/api/support/tickets").json()["tickets"]
    assert [t["ticketId"] for t in mine] == [web]
    assert widget.http.get(f"/api/support/messages/{by_mail}").status_code == 404
    r = widget.http.post(
        "/api/support/send-message", json={"ticketId": by_mail, "message": "это я"}
    )
    assert r.status_code == 404
    assert "это я" not in [m["message"] for m in operator.open(by_mail)["messages"]]


def test_a_signed_in_customer_on_two_devices_and_by_email(
    server: ServerProcess, imap: Dovecot, operator: OperatorClient
) -> None:
    who = unique_sender("ivan")
    uid = f"user-{next(_n)}-{time.time_ns()}"
    expires = int(time.time()) + 3600
    numbers = []
    for text in ("С телефона", "С ноутбука"):  # (the second: a new ticket of its own)
        v = VisitorClient(server.url)
        r = v.http.post(
            "/api/support/identify",
            json={
                "user_id": uid,
                "expires": expires,
                "hash": identity_signature(SHOP_SECRET, uid, expires),
                "name": "Иван",
                "email": who,
            },
        )
        assert r.status_code == 200, r.text
        numbers.append(v.send(text, new_ticket=bool(numbers))["ticketId"])
    by_mail = email_ticket(imap, operator, who, "Возврат", "Хочу вернуть товар.")
    seen = related(operator, numbers[0])
    assert set(seen) == {numbers[1], by_mail}
    assert seen[numbers[1]]["match"] == "customer"
    assert seen[by_mail]["match"] == "email"
    assert set(related(operator, by_mail)) == set(numbers)
