"""Beyond the basic chat, in real headless Chromium: known customers (signed identity),
several tickets, "nobody is there" (away message, email, transcript) and rating.

The server of this module has a shop identity secret and sends email to a local SMTP server.
"""

from __future__ import annotations

import email
import threading
import time
from collections.abc import Iterator
from email.message import Message as EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from playwright.sync_api import FrameLocator, Page, expect

from tests.browser.conftest import shot
from tests.browser.test_widget import (
    CLOSED,
    FRAME_EN,
    FRAME_RU,
    GREETING,
    WAIT,
    Operator,
    agent_row,
    customer_row,
    frame_of,
    open_chat,
    send,
    system_row,
    ticket_of,
)
from tests.support.server import ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, ServerProcess
from tests.support.services import free_port, wait_until
from trustdesk.actions.customers import identity_signature

pytestmark = pytest.mark.browser

SHOP_SECRET = "widget-shop-identity-secret"
AWAY = "Сейчас операторов нет на месте"


class Mailbox:
    """A real local SMTP server that keeps what it receives."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.arrived = threading.Condition()
        box = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                with box.arrived:
                    box.messages.append(email.message_from_bytes(envelope.content))
                    box.arrived.notify_all()
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def wait_for(self, count: int, timeout: float = 20) -> list[EmailMessage]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.messages) >= count, timeout), (
                f"expected {count} emails, got {len(self.messages)}"
            )
            return list(self.messages)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, mailbox: Mailbox) -> Iterator[ServerProcess]:
    srv = ServerProcess(
        tmp_path_factory.mktemp("widget-more"),
        extra_env={
            "TRUSTDESK_IDENTITY_SECRET": SHOP_SECRET,
            "TRUSTDESK_SMTP_HOST": "127.0.0.1",
            "TRUSTDESK_SMTP_PORT": str(mailbox.port),
            "TRUSTDESK_SMTP_STARTTLS": "false",
            "TRUSTDESK_SMTP_FROM": "Trust Store <support@trust.store>",
        },
    )
    srv.create_operator(ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, role="admin")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def operator(server: ServerProcess) -> Iterator[Operator]:
    op = Operator(server)
    yield op
    op.done()


def signed(user_id: str, expires: int | None = None) -> tuple[int, str]:
    """What the shop's server computes for its logged-in customer."""
    expires = expires or int(time.time()) + 3600
    return expires, identity_signature(SHOP_SECRET, user_id, expires)


def shop_page(page: Page, server: ServerProcess, attrs: str = "", locale: str = "") -> str:
    """A page of the shop (served on the same origin) with the embed tag and its attributes."""
    url = f"{server.url}/account"
    html = (
        "<!doctype html><html lang='ru'><meta charset='utf-8'><title>Личный кабинет</title>"
        f"<h1>Личный кабинет</h1><script src='{server.url}/widget.js' {locale} {attrs} async>"
        "</script>"
    )
    page.route(url, lambda route: route.fulfill(body=html, content_type="text/html"))
    return url


def current_ticket(page: Page) -> str | None:
    return frame_of(page).evaluate("() => localStorage.getItem('trustdesk.ticketId')")


def new_ticket_after(page: Page, old: str) -> str:
    wait_until(lambda: current_ticket(page) not in (None, old), 15, "a new ticket")
    value = current_ticket(page)
    assert value is not None
    return value


def warned(code: str):
    return lambda m: m.type == "warning" and code in m.text


def my_conversations(chat: FrameLocator):
    chat.get_by_role("button", name="Мои обращения").click()
    items = chat.locator("#tickets-list .tk")
    expect(chat.locator("#tickets-view")).to_be_visible()
    return items


# ----------------------------------------------------------------------------- known customers


def test_known_customer_sees_their_tickets_on_another_device(
    server: ServerProcess, new_page, operator: Operator
) -> None:
    uid = f"shop-user-{time.time_ns()}"
    expires, sig = signed(uid)
    laptop = new_page()
    attrs = (
        f'data-user-id="{uid}" data-user-expires="{expires}" data-user-hash="{sig}" '
        'data-user-name="Иван Петров" data-user-email="ivan@example.com"'
    )
    url = shop_page(laptop, server, attrs)
    requests: list[str] = []
    laptop.on("request", lambda r: requests.append(r.url))
    laptop.goto(url)
    expect(laptop.get_by_role("button", name="Открыть чат")).to_be_visible()
    laptop.wait_for_load_state("networkidle")
    assert not [u for u in requests if "/api/" in u], requests  # privacy: nothing before open
    laptop.get_by_role("button", name="Открыть чат").click()
    chat = laptop.frame_locator(FRAME_RU)
    send(chat, "Где мой заказ 10234?")
    ticket = ticket_of(laptop)
    assert any("/api/support/identify" in u for u in requests)
    summary = operator.open_ticket(ticket)["ticket"]
    assert summary["customer_id"] == uid
    assert summary["customer_name"] == "Иван Петров"
    assert summary["customer_email"] == "ivan@example.com"

    # Another device: the shop signs the customer in at runtime with TrustDesk.setUser.
    phone = new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    phone.goto(shop_page(phone, server))
    phone.evaluate(
        "u => TrustDesk.setUser(u)",
        {"id": uid, "expires": expires, "hash": sig, "name": "Иван Петров"},
    )
    phone.get_by_role("button", name="Открыть чат").click()
    chat2 = phone.frame_locator(FRAME_RU)
    # The open conversation follows the customer, with its history.
    expect(customer_row(chat2, "Где мой заказ 10234?")).to_have_count(1, timeout=WAIT)
    operator.reply(ticket, "Иван, заказ уже в пути 🚚")
    expect(agent_row(chat2, "заказ уже в пути")).to_be_visible(timeout=WAIT)
    expect(agent_row(chat, "заказ уже в пути")).to_be_visible(timeout=WAIT)
    items = my_conversations(chat2)
    expect(items).to_have_count(1, timeout=WAIT)
    expect(items.first).to_contain_text(ticket)
    expect(items.first).to_contain_text("Открыто")

    # A forged signature: the chat stays anonymous (a console warning), nothing of Ivan's.
    stranger = new_page()
    forged = f'data-user-id="{uid}" data-user-expires="{expires}" data-user-hash="{"ab" * 32}"'
    with stranger.expect_console_message(warned("identity_invalid"), timeout=WAIT):
        chat3 = open_chat(stranger, shop_page(stranger, server, forged))
    items = my_conversations(chat3)
    expect(chat3.get_by_text("Пока пусто")).to_be_visible(timeout=WAIT)
    expect(items).to_have_count(0)
    expect(chat3.locator("#log")).not_to_contain_text("Где мой заказ")
    # An expired one too.
    old, old_sig = signed(uid, int(time.time()) - 60)
    with stranger.expect_console_message(warned("identity_expired"), timeout=WAIT):
        stranger.evaluate("u => TrustDesk.setUser(u)", {"id": uid, "expires": old, "hash": old_sig})
    chat3.get_by_role("button", name="К переписке").click()
    expect(chat3.locator("#log")).not_to_contain_text("Где мой заказ")
    expect(chat3.locator("#log")).to_contain_text(GREETING)


# ----------------------------------------------------------------------------- several tickets


def test_several_tickets_switch_and_new_conversation(
    server: ServerProcess, new_page, operator: Operator
) -> None:
    page = new_page()
    chat = open_chat(page, server.url + "/")
    send(chat, "Доставите в Казань к пятнице?")
    first = ticket_of(page)
    operator.open_ticket(first)
    operator.reply(first, "Да, доставим за 2 дня 🚚")
    operator.close(first)
    expect(system_row(chat, CLOSED)).to_be_visible(timeout=WAIT)

    # "New conversation" starts a second ticket even though the customer has one.
    my_conversations(chat)
    chat.get_by_role("button", name="Новое обращение").click()
    expect(chat.locator("#tickets-view")).to_be_hidden()
    expect(chat.get_by_text(GREETING)).to_be_visible()
    expect(chat.locator("#log")).not_to_contain_text("Доставите в Казань")
    send(chat, "Хочу вернуть наушники Aura")
    second = new_ticket_after(page, first)
    expect(customer_row(chat, "Хочу вернуть наушники Aura")).to_have_count(1, timeout=WAIT)
    operator.open_ticket(second)
    operator.reply(second, "Конечно, оформим возврат. Пришлите номер заказа")

    # And a third, while the second is still open.
    my_conversations(chat)
    chat.get_by_role("button", name="Новое обращение").click()
    send(chat, "Подскажите размер ремешка для часов Pulse")
    third = new_ticket_after(page, second)
    expect(customer_row(chat, "ремешка")).to_have_count(1, timeout=WAIT)
    assert len({first, second, third}) == 3

    # The list: open tickets first (latest activity first), then the closed one.
    items = my_conversations(chat)
    expect(items).to_have_count(3, timeout=WAIT)
    expect(items.nth(0)).to_contain_text(third)
    expect(items.nth(0)).to_contain_text("Сейчас открыто")
    expect(items.nth(1)).to_contain_text(second)
    expect(items.nth(1)).to_contain_text("Конечно, оформим возврат")
    expect(items.nth(2)).to_contain_text(first)
    expect(items.nth(2)).to_contain_text("Решено")
    expect(items.nth(0)).to_have_attribute("aria-current", "true")
    shot(page, "widget-tickets-list", animations="disabled")

    # Switch to the first ticket: its history, and nothing of the others.
    items.nth(2).click()
    expect(agent_row(chat, "Да, доставим за 2 дня")).to_be_visible(timeout=WAIT)
    expect(customer_row(chat, "Доставите в Казань")).to_have_count(1)
    expect(chat.locator("#log")).not_to_contain_text("ремешка")
    expect(chat.locator("#closed-note")).to_be_visible()
    assert current_ticket(page) == first
    # Live frames of the ticket being viewed arrive; others' do not show here.
    operator.reply(second, "Номер заказа можно найти в письме")
    operator.reply(first, "Если что, пишите! 🙂")
    expect(agent_row(chat, "Если что, пишите!")).to_be_visible(timeout=WAIT)
    expect(chat.locator("#log")).not_to_contain_text("Номер заказа можно найти")
    # Back to the second: its live reply is there.
    my_conversations(chat).filter(has_text=second).click()
    expect(agent_row(chat, "Номер заказа можно найти")).to_be_visible(timeout=WAIT)
    send(chat, "Заказ 10234")
    expect(customer_row(chat, "Заказ 10234")).to_have_count(1, timeout=WAIT)
    assert operator.count(second, "Заказ 10234") == 1
    assert operator.count(first, "Заказ 10234") == 0


# ----------------------------------------------------------------------------- nobody there


def test_away_message_email_and_transcript(
    server: ServerProcess, new_page, operator: Operator, mailbox: Mailbox
) -> None:
    page = new_page()
    chat = open_chat(page, server.url + "/")
    away = chat.locator("#away")
    expect(away).to_contain_text(AWAY, timeout=WAIT)
    expect(chat.locator("#status")).to_have_attribute("data-state", "offline", timeout=WAIT)
    send(chat, "Добрый вечер! В посылке не оказалось зарядки")
    ticket = ticket_of(page)
    box = away.get_by_role("textbox", name="Ваш email")
    box.fill("не-почта")
    away.get_by_role("button", name="Сохранить").click()
    expect(away.get_by_role("alert")).to_have_text("Проверьте адрес email.")
    box.fill("olga@example.com")
    away.get_by_role("button", name="Сохранить").click()
    expect(away).to_contain_text("Ответы придут и на olga@example.com", timeout=WAIT)
    expect(box).to_be_hidden()
    wait_until(
        lambda: any(
            t["ticketId"] == ticket and t["customer_email"] == "olga@example.com"
            for t in operator.tickets()
        ),
        10,
        "the customer's email",
    )
    shot(page, "widget-away", animations="disabled")

    # Email me the transcript (email is configured on this server).
    chat.get_by_role("button", name="Отправить переписку на email").click()
    sheet = chat.get_by_role("dialog", name="Отправить переписку на email")
    expect(sheet.get_by_role("textbox", name="Ваш email")).to_have_value("olga@example.com")
    sheet.get_by_role("button", name="Отправить", exact=True).click()
    expect(sheet.get_by_role("status")).to_contain_text(
        "Переписка отправлена на olga@example.com", timeout=WAIT
    )
    got = [m for m in mailbox.wait_for(1) if ticket in str(m["Subject"])]
    assert got and got[0]["To"] == "olga@example.com"
    body = got[0].get_payload(decode=True).decode()
    assert "В посылке не оказалось зарядки" in body

    # An operator comes online: the away message goes; and comes back when they leave.
    operator.go_online()
    expect(away).to_be_hidden(timeout=WAIT)
    expect(chat.locator("#status")).to_have_attribute("data-state", "online", timeout=WAIT)
    assert operator.ws is not None
    operator.ws.close()
    operator.ws = None
    expect(away).to_be_visible(timeout=30_000)
    expect(away).to_contain_text("Ответы придут и на olga@example.com")


# ----------------------------------------------------------------------------- rating


def test_rating_after_the_ticket_is_closed(
    server: ServerProcess, new_page, operator: Operator
) -> None:
    page = new_page()
    chat = open_chat(page, server.url + "/")
    send(chat, "Помогите выбрать подарок папе")
    ticket = ticket_of(page)
    operator.open_ticket(ticket)
    operator.reply(ticket, "Советую часы Pulse: 7 дней без подзарядки ⌚")
    expect(chat.get_by_role("heading", name="Как мы справились?")).to_have_count(0)
    operator.close(ticket)
    expect(system_row(chat, CLOSED)).to_be_visible(timeout=WAIT)
    rate = chat.locator("#rate")
    expect(rate.get_by_role("heading", name="Как мы справились?")).to_be_visible(timeout=WAIT)
    for n in range(1, 6):
        expect(rate.get_by_role("button", name=f"Оценка {n}", exact=True)).to_be_visible()
    rate.get_by_role("button", name="Оценка 5").click()
    expect(rate.get_by_role("heading", name="Спасибо за оценку!")).to_be_visible(timeout=WAIT)
    expect(rate.get_by_role("button", name="Оценка 5")).to_have_attribute("aria-pressed", "true")
    wait_until(
        lambda: (operator.open_ticket(ticket)["ticket"]["rating"] or {}).get("score") == 5,
        10,
        "the rating",
    )
    rate.get_by_role("textbox", name="Комментарий к оценке").fill("Быстро и по делу, спасибо!")
    shot(page, "widget-rating", animations="disabled")
    rate.get_by_role("button", name="Отправить", exact=True).click()
    expect(rate).to_contain_text("Мы прочитаем каждый отзыв", timeout=WAIT)
    rating = operator.open_ticket(ticket)["ticket"]["rating"]
    assert rating == {"score": 5, "comment": "Быстро и по делу, спасибо!"}

    # Not asked again for this ticket.
    page.reload()
    chat = open_chat(page, server.url + "/")
    expect(system_row(chat, CLOSED)).to_be_visible(timeout=WAIT)
    expect(chat.locator("#closed-note")).to_be_visible()
    expect(chat.locator("#rate")).to_be_hidden()
    # The next message reopens the ticket, as before.
    send(chat, "А подарочная упаковка есть?")
    expect(system_row(chat, "Тикет открыт повторно")).to_be_visible(timeout=WAIT)
    expect(chat.locator("#closed-note")).to_be_hidden()
    assert any(t["ticketId"] == ticket for t in operator.tickets("open"))


def test_english_texts(server: ServerProcess, new_page) -> None:
    page = new_page(locale="en-US")
    chat = open_chat(page, shop_page(page, server), frame=FRAME_EN, launcher="Open chat")
    for name in ("Attach file", "Record voice message", "My conversations"):
        expect(chat.get_by_role("button", name=name)).to_be_visible()
    expect(chat.locator("#away")).to_contain_text("No one is available", timeout=WAIT)
    expect(chat.get_by_role("textbox", name="Your email")).to_be_visible()
    chat.get_by_role("button", name="My conversations").click()
    expect(chat.get_by_role("button", name="New conversation")).to_be_visible()
    expect(chat.get_by_role("button", name="Back to chat")).to_be_visible()
    expect(chat.locator("#tickets-view")).to_contain_text("Nothing here yet", timeout=WAIT)
    expect(page.locator(FRAME_RU)).to_have_count(0)
