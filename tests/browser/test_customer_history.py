"""One customer across channels in the side panel (customer-history.js): a widget customer
who left their address, and the same address writing by email, shown together with each
conversation's channel icon, date and last message, opened in one click. Real Chromium,
real Dovecot, real aiosmtpd."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.api.test_email_inbox import mail
from tests.browser.conftest import SCREENSHOTS
from tests.browser.test_dashboard import conversation, login, open_ticket, watch_errors
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
        tmp_path_factory.mktemp("browser-history"),
        extra_env={
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


def test_side_panel_shows_the_customer_in_every_channel(
    server: ServerProcess, imap: Dovecot, new_page: Callable[..., Page]
) -> None:
    who = "marina.k@example.com"
    widget = VisitorClient(server.url)
    web = widget.send("Здравствуйте! Подойдёт ли чехол к iPhone 15?")["ticketId"]
    r = widget.http.post("/api/support/contact", json={"email": who, "name": "Марина"})
    assert r.is_success, r.text
    raw, _ = mail(f"Марина К. <{who}>", "Возврат чехла", "Чехол не подошёл, как вернуть?")
    imap.append(raw)
    op = OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    found: list[str] = []

    def arrived() -> bool:
        found[:] = [
            t["ticketId"]
            for t in op.tickets(status="all")
            if t["customer_email"] == who and t["channel"] == "email"
        ]
        return bool(found)

    wait_until(arrived, 20, "the email ticket")
    by_mail = found[0]
    VisitorClient(server.url).send("Совсем другой покупатель")  # never in Марина's panel

    page = new_page(viewport={"width": 1360, "height": 860})
    errors = watch_errors(page)
    login(page, server)
    open_ticket(page, web)
    card = page.locator("#customer-history")
    expect(card.locator("h3")).to_contain_text("Все обращения клиента")
    rows = card.locator(".hist-list li")
    expect(rows).to_have_count(1)
    mail_row = card.locator(f"li[data-ticket='{by_mail}']")
    expect(mail_row.locator(".hist-icon")).to_have_attribute("aria-label", "Почта")
    expect(mail_row.locator(".hist-last")).to_contain_text("Чехол не подошёл, как вернуть?")
    expect(mail_row.locator(".hist-match")).to_have_text("по email")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator(".info-pane").screenshot(path=str(SCREENSHOTS / "customer-history.png"))

    mail_row.locator("a").click()  # one click opens it
    expect(conversation(page)).to_contain_text("Чехол не подошёл, как вернуть?")
    web_row = page.locator(f"#customer-history li[data-ticket='{web}']")
    expect(web_row.locator(".hist-icon")).to_have_attribute("aria-label", "Виджет на сайте")
    expect(web_row.locator(".hist-last")).to_contain_text("Подойдёт ли чехол к iPhone 15?")
    assert errors == []
