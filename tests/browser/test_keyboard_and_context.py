"""The dashboard's keyboard (focus in the reply box, j/k, "?", the character counter) and the
customer beside the chat (numbered guests, the name an operator sets, the shop's orders from
the demo storefront's hook), in a real Chromium against the real server."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import shot
from tests.browser.test_dashboard import login, open_ticket, row
from tests.browser.test_widget import open_chat, send, ticket_of
from tests.support.server import ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, ServerProcess
from tests.support.services import free_port

SHOP_SECRET = "shop-secret-for-browser-context"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """`make run` with the demo customer on: the storefront signs in Мария, and the order
    hook is the storefront's own endpoint."""
    port = free_port()
    srv = ServerProcess(
        tmp_path_factory.mktemp("browser-context"),
        port=port,
        extra_env={
            "TRUSTDESK_IDENTITY_SECRET": SHOP_SECRET,
            "TRUSTDESK_CONTEXT_URL": f"http://127.0.0.1:{port}/demo/api/orders",
            "TRUSTDESK_DEMO_CUSTOMER": "true",
        },
    )
    srv.create_operator(ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, role="admin")
    srv.start()
    yield srv
    srv.stop()


def _anonymous_ticket(server: ServerProcess, text: str) -> str:
    http = httpx.Client(base_url=server.url, timeout=30)
    token = http.post("/api/support/session").json()["token"]
    r = http.post(
        "/api/support/send-message",
        json={"message": text, "client_msg_id": f"c-{time.time_ns()}"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200, r.text
    return str(r.json()["ticketId"])


def rows_in_order(page: Page) -> list[str]:
    out: list[str] = page.locator("a.ticket-row").evaluate_all(
        "rows => rows.map(r => r.dataset.ticketId)"
    )
    return out


def _focused_id(page: Page) -> str:
    return str(page.evaluate("() => document.activeElement && document.activeElement.id"))


def test_demo_customer_name_and_orders_beside_the_chat(
    server: ServerProcess, new_page: Callable[..., Page]
) -> None:
    # The storefront signs in its demo customer and she writes through the widget.
    shop = new_page()
    chat = open_chat(shop, server.url + "/")
    expect(shop.locator("#account")).to_have_text("👤 Мария Петрова")
    send(chat, "Когда приедет мой заказ TS-10482?")
    ticket = ticket_of(shop)
    guest = _anonymous_ticket(server, "Здравствуйте, есть вопрос")

    page = new_page()
    login(page, server)
    expect(row(page, ticket)).to_contain_text("Мария Петрова")
    expect(row(page, guest)).to_contain_text(re.compile(r"Гость #\d{4}"))
    open_ticket(page, ticket)
    panel = page.locator(".info-pane")
    orders = panel.locator(".orders-card")
    expect(orders.get_by_role("heading", name="Заказы")).to_be_visible()
    expect(orders.locator(".order")).to_have_count(3)
    first = orders.locator(".order").first
    link = first.get_by_role("link", name="TS-10482")
    expect(link).to_have_attribute("target", "_blank")
    expect(link).to_have_attribute("rel", re.compile(r"\bnoopener\b"))
    expect(first).to_contain_text("В пути")
    expect(first.locator(".order-total")).to_have_text(re.compile(r"^12\s990,00\s₽$"))
    expect(first.locator(".order-date")).to_contain_text("3 дек")
    shot(page, "dashboard-customer-orders")

    # Any operator renames the customer; the list, header and panel follow.
    open_ticket(page, guest)
    expect(panel.locator(".orders-card")).to_have_count(0)  # anonymous: no orders, no call
    panel.get_by_role("button", name="Изменить имя").click()
    box = panel.get_by_role("textbox", name="Имя покупателя")
    expect(box).to_be_focused()
    box.fill("Ольга из Казани")
    shot(page, "dashboard-customer-rename")
    box.press("Enter")
    expect(panel.locator(".customer-name")).to_have_text("Ольга из Казани")
    expect(row(page, guest)).to_contain_text("Ольга из Казани")
    expect(page.locator(".conv-header")).to_contain_text("Ольга из Казани")


def test_keyboard_focus_jk_help_and_counter(
    server: ServerProcess, new_page: Callable[..., Page]
) -> None:
    ids = [_anonymous_ticket(server, f"Вопрос номер {i}") for i in range(3)]
    page = new_page()
    login(page, server)
    # After login with no ticket open: the first ticket, so j/k and Enter work at once.
    expect(page.locator("a.ticket-row").first).to_be_focused()
    assert set(ids) <= set(rows_in_order(page))

    open_ticket(page, ids[1])
    reply = page.get_by_role("textbox", name="Ответ")
    expect(reply).to_be_focused()  # opening a ticket puts the caret in the reply box
    # In the reply box, j is a letter; Escape leaves the box, then j/k move.
    reply.press("j")
    expect(reply).to_have_value("j")
    reply.press("Escape")
    expect(reply).not_to_be_focused()
    shown = rows_in_order(page)
    at = shown.index(ids[1])
    page.keyboard.press("j")
    expect(page).to_have_url(re.compile(re.escape(shown[at + 1]) + "$"))
    expect(page.get_by_role("textbox", name="Ответ")).to_be_focused()
    page.get_by_role("textbox", name="Ответ").press("Escape")
    shown = rows_in_order(page)
    at = shown.index(shown[at + 1])
    page.keyboard.press("k")
    expect(page).to_have_url(re.compile(re.escape(shown[at - 1]) + "$"))
    # (the ticket has loaded once its reply box has the caret; Escape before that would
    # be undone by the load)
    expect(page.get_by_role("textbox", name="Ответ")).to_be_focused()
    page.get_by_role("textbox", name="Ответ").press("Escape")
    page.keyboard.press("ArrowUp")
    expect(page).to_have_url(re.compile(re.escape(shown[at - 2]) + "$"))
    # Typing in the search box is never interrupted: no focus theft, no shortcuts.
    search = page.get_by_role("searchbox").first
    search.click()
    search.press("j")
    search.press("k")
    expect(search).to_be_focused()
    expect(search).to_have_value("jk")
    search.fill("")
    page.get_by_role("textbox", name="Ответ").focus()
    page.get_by_role("textbox", name="Ответ").press("Escape")

    # "?" lists the shortcuts in a labelled dialog; Escape closes it and focus returns.
    before = _focused_id(page)
    page.keyboard.press("?")
    dialog = page.get_by_role("dialog", name="Клавиши")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Следующий тикет")
    shot(page, "dashboard-shortcuts")
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    assert _focused_id(page) == before

    # The counter: silent at first, from 80 % "3 650 / 4 000", red past the limit, and a
    # pasted 4,500 characters are kept (not cut) with Send off and the reason shown.
    reply = page.get_by_role("textbox", name="Ответ")
    counter = page.locator("#reply-counter")
    reply.fill("а" * 100)
    expect(counter).to_be_hidden()
    reply.fill("а" * 3650)
    expect(counter).to_have_text(re.compile(r"^3\s650 / 4\s000$"))
    expect(counter).not_to_have_class(re.compile(r"\bover\b"))
    send_btn = page.locator(".send-btn")
    expect(send_btn).to_be_enabled()
    reply.fill("")
    reply.focus()
    page.keyboard.insert_text("б" * 4500)
    expect(reply).to_have_value("б" * 4500)
    expect(counter).to_have_text(re.compile(r"^4\s500 / 4\s000$"))
    expect(counter).to_have_class(re.compile(r"\bover\b"))
    expect(send_btn).to_be_disabled()
    expect(page.locator(".composer-error")).to_contain_text("на 500 больше 4000")
    shot(page, "dashboard-counter-over")
    reply.press("Enter")  # refused in the browser; the server would answer 422 anyway
    expect(reply).to_have_value("б" * 4500)
    reply.fill("б" * 4000)
    expect(send_btn).to_be_enabled()
    expect(page.locator(".composer-error")).to_have_text("")
