"""An email ticket in the dashboard (channels.js): marked in the list next to a widget
ticket, answered from the dashboard, the answer out by SMTP in the thread. Real Chromium,
real Dovecot, real aiosmtpd."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.api.test_email_inbox import mail
from tests.browser.conftest import shot
from tests.browser.test_dashboard import conversation, login, open_ticket, row, watch_errors
from tests.support.clients import OperatorClient, VisitorClient
from tests.support.dovecot import Dovecot, dovecot_available
from tests.support.server import ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, ServerProcess
from tests.support.services import wait_until
from tests.support.smtp import Mailbox

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not dovecot_available(), reason="dovecot-imapd not installed"),
]
SHOP = "support@trust.store"
IMAP_USER = SHOP  # the Dovecot mailbox (tests/conftest.py imap)


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, mailbox: Mailbox, imap: Dovecot
) -> Iterator[ServerProcess]:
    srv = ServerProcess(
        tmp_path_factory.mktemp("browser-channels"),
        extra_env={
            "TRUSTDESK_SMTP_HOST": "127.0.0.1",
            "TRUSTDESK_SMTP_PORT": str(mailbox.port),
            "TRUSTDESK_SMTP_STARTTLS": "false",
            "TRUSTDESK_SMTP_FROM": f"Trust Store <{SHOP}>",
            "TRUSTDESK_EMAIL_REPLY_DOMAIN": "mail.trust.store",
            **imap.env(poll_seconds=1.0),
        },
    )
    srv.create_operator(ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, role="admin")
    srv.start()
    yield srv
    srv.stop()


def test_email_ticket_in_the_list_and_answered(
    server: ServerProcess,
    imap: Dovecot,
    mailbox: Mailbox,
    new_page: Callable[..., Page],
) -> None:
    web = VisitorClient(server.url).send("Здравствуйте, есть ли самовывоз?")["ticketId"]
    who = "olga.petrova@example.com"
    raw, first_id = mail(
        f"Ольга Петрова <{who}>",
        "Не пришёл заказ 1057",
        "Добрый день! Заказ 1057 должен был прийти вчера, но его нет.\n\n"
        "-- \nОльга Петрова\n+7 900 123-45-67\n",
    )
    imap.append(raw)
    op = OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    found: list[str] = []

    def arrived() -> bool:
        found[:] = [t["ticketId"] for t in op.tickets() if t["customer_email"] == who]
        return bool(found)

    wait_until(arrived, 20, "the email ticket")
    number = found[0]

    page = new_page(viewport={"width": 1360, "height": 860})
    errors = watch_errors(page)
    login(page, server)
    expect(row(page, number).locator(".pill.channel")).to_have_text("✉ Почта")
    expect(row(page, number).locator(".pill.channel")).to_have_attribute("title", "Канал: ✉ Почта")
    expect(row(page, web)).to_be_visible()
    expect(row(page, web).locator(".pill.channel")).to_have_count(0)
    open_ticket(page, number)
    expect(conversation(page)).to_contain_text("Заказ 1057 должен был прийти вчера")
    expect(conversation(page)).not_to_contain_text("+7 900 123-45-67")  # the signature
    # The side panel says where the customer writes from, not an unknown page and browser.
    facts = page.locator(".customer-card .facts")
    expect(facts).to_contain_text("Канал✉ Почта")
    expect(facts).not_to_contain_text("Страница")
    expect(facts).not_to_contain_text("Браузер")
    shot(page, "dashboard-email-ticket")

    before = len(mailbox.messages)
    box = page.get_by_role("textbox", name="Ответ")
    box.fill("Ольга, заказ передан курьеру, он привезёт его сегодня до 18:00.")
    box.press("Enter")
    expect(conversation(page)).to_contain_text("привезёт его сегодня")
    out = next(m for m in mailbox.wait_for(before + 1)[before:] if m["To"] == who)
    assert out["In-Reply-To"] == first_id
    assert "привезёт его сегодня" in out.get_payload(decode=True).decode()
    assert errors == []
