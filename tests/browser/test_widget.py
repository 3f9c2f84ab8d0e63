"""The customer widget and the Trust Store demo storefront, in real headless Chromium.

The customer side is driven through the browser exactly as a customer would use it; the
operator side goes through the real HTTP API (and the operator WebSocket for "typing").
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Frame, FrameLocator, Page, expect
from websockets.sync.client import ClientConnection, connect

from tests.browser.conftest import shot
from tests.support.server import ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, ServerProcess
from tests.support.services import wait_until

pytestmark = pytest.mark.browser

FRAME_RU = "iframe[title='Чат поддержки']"
FRAME_EN = "iframe[title='Support chat']"
GREETING = "Привет! Чем могу помочь? 😊"
CLOSED = "✅ Тикет закрыт. Спасибо за обращение!"
WAIT = 15_000


# ----------------------------------------------------------------------------- operator


class Operator:
    """The operator, through the dashboard's HTTP API (login -> cookie + CSRF token)."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.url, timeout=30)
        r = self.http.post(
            "/api/admin/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        assert r.status_code == 200, r.text
        self.csrf = r.json()["csrf_token"]
        self.name = r.json()["operator"]["name"]
        self.ws: ClientConnection | None = None

    def _post(self, path: str, body: dict[str, object] | None = None) -> dict[str, object]:
        r = self.http.post(path, json=body or {}, headers={"X-CSRF-Token": self.csrf})
        assert r.status_code == 200, r.text
        return r.json()

    def tickets(self, status: str = "all") -> list[dict[str, object]]:
        r = self.http.get("/api/admin/support/tickets", params={"status": status})
        assert r.status_code == 200, r.text
        return r.json()["tickets"]

    def open_ticket(self, ticket_id: str) -> dict[str, object]:
        r = self.http.get(f"/api/admin/support/ticket/{ticket_id}")
        assert r.status_code == 200, r.text
        return r.json()

    def messages(self, ticket_id: str) -> list[dict[str, object]]:
        return self.open_ticket(ticket_id)["messages"]  # type: ignore[return-value]

    def count(self, ticket_id: str, text: str, sender: str = "customer") -> int:
        return sum(
            1
            for m in self.messages(ticket_id)
            if m["message"] == text and m["sender_type"] == sender
        )

    def reply(self, ticket_id: str, text: str) -> dict[str, object]:
        return self._post("/api/admin/support/reply", {"ticketId": ticket_id, "message": text})

    def close(self, ticket_id: str) -> dict[str, object]:
        return self._post(f"/api/admin/support/close/{ticket_id}")

    def go_online(self) -> None:
        """Open the dashboard's socket: the operator is online (and can send "typing")."""
        if self.ws is not None:
            self.ws.close()
        cookie = "; ".join(f"{k}={v}" for k, v in self.http.cookies.items())
        self.ws = connect(
            self.server.ws_url + "/ws/operator",
            origin=self.server.url,  # type: ignore[arg-type]
            additional_headers={"Cookie": cookie},
            open_timeout=10,
            close_timeout=2,
            max_queue=None,  # keep reading what the server streams, so closing is quick
        )
        self.ws.send(json.dumps({"type": "hello", "since": 0}))
        while json.loads(self.ws.recv(timeout=10))["type"] != "ready":
            pass

    def typing(self, ticket_id: str, active: bool) -> None:
        assert self.ws is not None
        self.ws.send(json.dumps({"type": "typing", "ticketId": ticket_id, "active": active}))

    def wait_frame(self, **match: object) -> dict[str, object]:
        """The next frame on the operator's socket whose fields match (others are skipped)."""
        assert self.ws is not None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            frame = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if all(frame.get(k) == v for k, v in match.items()):
                return frame
        raise AssertionError(f"no operator frame matching {match}")

    def done(self) -> None:
        if self.ws is not None:
            self.ws.close()
        self.http.close()


@pytest.fixture(scope="module")
def operator(server: ServerProcess) -> Iterator[Operator]:
    """One operator session for the module (logging in is deliberately slow: argon2id)."""
    op = Operator(server)
    yield op
    op.done()


# ----------------------------------------------------------------------------- customer


def open_chat(page: Page, url: str, frame: str = FRAME_RU, launcher: str = "Открыть чат"):
    """Open the storefront and the chat; return the chat frame."""
    page.goto(url)
    page.get_by_role("button", name=launcher).click()
    chat = page.frame_locator(frame)
    expect(chat.locator("#input")).to_be_visible()
    return chat


def textbox(chat: FrameLocator):
    return chat.get_by_role("textbox", name="Сообщение")


def send(chat: FrameLocator, text: str) -> None:
    box = textbox(chat)
    box.fill(text)
    box.press("Enter")


def frame_of(page: Page, frame: str = FRAME_RU) -> Frame:
    handle = page.locator(frame).element_handle()
    assert handle is not None
    content = handle.content_frame()
    assert content is not None
    return content


def ticket_of(page: Page, frame: str = FRAME_RU) -> str:
    """The ticket id the widget keeps in its localStorage (as the spec asks)."""
    handle = frame_of(page, frame).wait_for_function(
        "() => localStorage.getItem('trustdesk.ticketId')", timeout=WAIT
    )
    value = handle.json_value()
    assert isinstance(value, str) and value.startswith("TKT-"), value
    return value


def customer_row(chat: FrameLocator, text: str):
    return message_row(chat, "customer", text)


def agent_row(chat: FrameLocator, text: str):
    return message_row(chat, "agent", text)


def message_row(chat: FrameLocator, side: str, text: str):
    """The row whose bubble has `text`: matched in the bubble, not the whole row, whose
    text also has the sender and the time ("часть 1" + "20:13" reads "часть 120:13")."""
    return chat.locator(f".row--{side}[data-id]").filter(has=chat.locator(".bubble", has_text=text))


def system_row(chat: FrameLocator, text: str):
    return chat.locator(".row--system", has_text=text)


HHMM = re.compile(r"^\d\d:\d\d$")


def fake_hidden(page: Page, hidden: bool) -> None:
    """Pretend the shop's tab is hidden or visible again (headless tabs are always visible)."""
    page.evaluate(
        """hidden => {
            Object.defineProperty(document, 'hidden', {configurable: true, get: () => hidden});
            document.dispatchEvent(new Event('visibilitychange'));
        }""",
        hidden,
    )


# ----------------------------------------------------------------------------- tests


def test_launcher_is_private_accessible_and_isolated(server: ServerProcess, new_page) -> None:
    page = new_page()
    requests: list[str] = []
    sockets: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.goto(server.url + "/")
    expect(page).to_have_title(re.compile("Trust Store"))
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    launcher = page.get_by_role("button", name="Открыть чат")
    expect(launcher).to_be_visible()
    box = launcher.bounding_box()
    assert box is not None
    assert box["x"] > 1280 - 120 and box["y"] > 800 - 120  # bottom right

    # The shop's CSS cannot break the launcher: it lives in a shadow root.
    hostile = [
        "button, div, span, svg, iframe { display: none !important; opacity: 0 !important; }",
        "body * { position: static !important; visibility: hidden; }",
    ]
    page.evaluate("rules => rules.forEach(r => document.styleSheets[0].insertRule(r, 0))", hostile)
    expect(launcher).to_be_visible()
    assert launcher.bounding_box() == box
    assert page.evaluate("() => !!document.querySelector('trustdesk-widget').shadowRoot")
    page.evaluate(
        "() => { document.styleSheets[0].deleteRule(0); document.styleSheets[0].deleteRule(0); }"
    )

    # Privacy by default: no frame, no API call, no socket, nothing stored before first open.
    page.wait_for_load_state("networkidle")
    expect(page.locator("iframe")).to_have_count(0)
    assert not [u for u in requests if "/api/" in u or "/widget/" in u], requests
    assert sockets == []
    assert page.evaluate("() => localStorage.length") == 0
    assert page.evaluate("() => typeof window.TrustDesk.open") == "function"
    shot(page, "widget-launcher", animations="disabled")

    # The JS API opens the chat; the frame is created lazily on first open.
    page.evaluate("() => window.TrustDesk.open()")
    chat = page.frame_locator(FRAME_RU)
    expect(chat.get_by_text(GREETING)).to_be_visible()
    expect(page.get_by_role("button", name="Свернуть чат").first).to_be_visible()
    expect(chat.get_by_role("log")).to_have_attribute("aria-live", "polite")
    expect(textbox(chat)).to_be_visible()
    send_button = chat.get_by_role("button", name="Отправить")
    expect(send_button).to_be_disabled()
    textbox(chat).fill("   ")
    expect(send_button).to_be_disabled()
    textbox(chat).fill("x")
    expect(send_button).to_be_enabled()
    page.evaluate("() => window.TrustDesk.close()")
    expect(page.get_by_role("button", name="Открыть чат")).to_be_visible()


def test_manual_test_from_the_spec(server: ServerProcess, new_page, operator: Operator) -> None:
    """The spec's 12-step manual test, with the operator driven through the API."""
    operator.go_online()
    page = new_page()
    # 1-2. Open the site, open the chat (bottom right corner).
    chat = open_chat(page, server.url + "/")
    expect(chat.get_by_text(GREETING)).to_be_visible()
    expect(chat.locator("#status")).to_have_attribute("data-state", "online", timeout=WAIT)
    # 3. Write "Тест связи".
    send(chat, "Тест связи")
    mine = customer_row(chat, "Тест связи")
    expect(mine).to_have_count(1, timeout=WAIT)
    expect(mine.locator("time")).to_have_text(HHMM)
    expect(mine.locator(".receipt")).to_have_attribute("data-state", "sent")
    expect(textbox(chat)).to_have_value("")
    ticket = ticket_of(page)
    # 4-5. The operator sees the ticket in the list.
    listed = {t["ticketId"]: t for t in operator.tickets()}
    assert ticket in listed
    # 6. The operator opens it; the customer sees "Оператор Артём подключился".
    operator.open_ticket(ticket)
    expect(system_row(chat, f"Оператор {ADMIN_NAME} подключился")).to_be_visible(timeout=WAIT)
    expect(mine.locator(".receipt")).to_have_attribute("data-state", "read", timeout=WAIT)
    # 7-9. The operator answers "Привет! Как дела?"; the customer sees it at once.
    operator.reply(ticket, "Привет! Как дела?")
    reply = agent_row(chat, "Привет! Как дела?")
    expect(reply).to_be_visible(timeout=WAIT)
    expect(reply.locator(".row__label")).to_have_text(f"👤 Поддержка · {ADMIN_NAME}")
    expect(reply.locator("time")).to_have_text(HHMM)
    expect(reply).to_have_count(1)
    shot(page, "widget-conversation", animations="disabled")
    # 10-12. The operator closes the ticket; the customer sees the notice.
    operator.close(ticket)
    notice = system_row(chat, CLOSED)
    expect(notice).to_be_visible(timeout=WAIT)
    expect(notice).to_have_count(1)
    expect(chat.locator("#closed-note")).to_be_visible()
    shot(page, "widget-closed-ticket", animations="disabled")


def test_scenario_1_first_contact(server: ServerProcess, new_page, operator: Operator) -> None:
    page = new_page()
    chat = open_chat(page, server.url + "/")
    # 1. The bot greets.
    expect(chat.locator(".row--agent", has_text=GREETING)).to_have_count(1)
    # 2-3. The customer writes; a ticket is created and kept in localStorage.
    send(chat, "Здравствуйте, как оплатить заказ?")
    expect(customer_row(chat, "Здравствуйте, как оплатить заказ?")).to_have_count(1, timeout=WAIT)
    ticket = ticket_of(page)
    # The stored greeting replaced the local one: still exactly one greeting, the first row.
    expect(chat.locator(".row--agent", has_text=GREETING)).to_have_count(1)
    expect(chat.locator(".row").first).to_contain_text(GREETING)
    assert any(t["ticketId"] == ticket for t in operator.tickets("open"))
    # 4. The operator opens the ticket.
    operator.open_ticket(ticket)
    expect(system_row(chat, "👨‍💼 Оператор Артём подключился к диалогу")).to_be_visible(
        timeout=WAIT
    )
    # 5-6. The operator answers; the customer sees it with the operator's name.
    answer = "Здравствуйте! Оплату можно провести через ЮMoney..."
    operator.reply(ticket, answer)
    expect(agent_row(chat, answer)).to_be_visible(timeout=WAIT)
    expect(agent_row(chat, answer)).to_contain_text(ADMIN_NAME)
    # Order on screen is the order of the ids.
    ids = [
        int(x)
        for x in chat.locator(".row[data-id]").evaluate_all("rows => rows.map(r => r.dataset.id)")
    ]
    assert ids == sorted(ids) and len(ids) == len(set(ids)) == 4


def test_scenario_2_close_and_reopen(server: ServerProcess, new_page, operator: Operator) -> None:
    page = new_page()
    chat = open_chat(page, server.url + "/")
    send(chat, "Хочу вернуть товар")
    ticket = ticket_of(page)
    operator.open_ticket(ticket)
    operator.close(ticket)
    expect(system_row(chat, CLOSED)).to_be_visible(timeout=WAIT)
    expect(chat.locator("#closed-note")).to_be_visible()
    assert any(t["ticketId"] == ticket for t in operator.tickets("closed"))
    # The next message reopens it.
    send(chat, "Ещё один вопрос")
    expect(customer_row(chat, "Ещё один вопрос")).to_have_count(1, timeout=WAIT)
    expect(system_row(chat, "Тикет открыт повторно")).to_be_visible(timeout=WAIT)
    expect(chat.locator("#closed-note")).to_be_hidden()
    assert any(t["ticketId"] == ticket for t in operator.tickets("open"))
    assert ticket_of(page) == ticket


def test_scenario_3_customer_returns_later(
    server: ServerProcess, new_page, operator: Operator
) -> None:
    page = new_page()
    chat = open_chat(page, server.url + "/")
    send(chat, "Где мой заказ?")
    ticket = ticket_of(page)
    operator.open_ticket(ticket)
    operator.reply(ticket, "Заказ уже в пути 🚚")
    expect(agent_row(chat, "Заказ уже в пути 🚚")).to_be_visible(timeout=WAIT)

    # 1. The customer closes the site (the tab); the ticket stays in localStorage.
    context = page.context
    page.close()
    # The operator writes while they are away.
    operator.reply(ticket, "Курьер будет завтра с 10 до 14")

    # 2. They come back and open the chat: the whole history is there, nothing twice.
    page = context.new_page()
    chat = open_chat(page, server.url + "/")
    for text in ("Где мой заказ?", "Заказ уже в пути 🚚", "Курьер будет завтра с 10 до 14"):
        expect(chat.locator(".row[data-id]", has_text=text)).to_have_count(1, timeout=WAIT)
    expect(system_row(chat, "подключился")).to_have_count(1)
    assert ticket_of(page) == ticket
    # ... and can continue the conversation in the same ticket.
    send(chat, "Спасибо!")
    expect(customer_row(chat, "Спасибо!")).to_have_count(1, timeout=WAIT)
    assert operator.count(ticket, "Спасибо!") == 1
    # 3. New messages arrive by themselves.
    operator.reply(ticket, "Обращайтесь 🙂")
    expect(agent_row(chat, "Обращайтесь 🙂")).to_be_visible(timeout=WAIT)

    # A plain reload keeps everything too.
    page.reload()
    chat = open_chat(page, server.url + "/")
    expect(chat.locator(".row[data-id]")).to_have_count(
        len([m for m in operator.messages(ticket) if m["kind"] != "note"]), timeout=WAIT
    )


def test_two_customers_never_see_each_other(
    server: ServerProcess, new_page, operator: Operator
) -> None:
    alice, bob = new_page(), new_page()
    chat_a = open_chat(alice, server.url + "/")
    chat_b = open_chat(bob, server.url + "/")
    send(chat_a, "Алиса: мой адрес Ленина 5")
    send(chat_b, "Боб: мой телефон 123")
    ticket_a, ticket_b = ticket_of(alice), ticket_of(bob)
    assert ticket_a != ticket_b
    operator.reply(ticket_a, "Алиса, заказ собран")
    operator.reply(ticket_b, "Боб, перезвоним")
    expect(agent_row(chat_a, "Алиса, заказ собран")).to_be_visible(timeout=WAIT)
    expect(agent_row(chat_b, "Боб, перезвоним")).to_be_visible(timeout=WAIT)
    expect(chat_a.get_by_text("Боб")).to_have_count(0)
    expect(chat_b.get_by_text("Алиса")).to_have_count(0)

    # Alice's credential cannot read Bob's ticket.
    token_a = frame_of(alice).evaluate("() => localStorage.getItem('trustdesk.token')")
    r = httpx.get(
        f"{server.url}/api/support/messages/{ticket_b}",
        headers={"Authorization": f"Bearer {token_a}"},
    )
    assert r.status_code == 404


def test_offline_message_is_queued_and_sent_exactly_once(
    server: ServerProcess, new_page, operator: Operator
) -> None:
    page = new_page()
    chat = open_chat(page, server.url + "/")
    send(chat, "Перед обрывом связи")
    ticket = ticket_of(page)
    expect(customer_row(chat, "Перед обрывом связи")).to_have_count(1, timeout=WAIT)

    page.context.set_offline(True)
    expect(chat.locator("#banner")).to_contain_text("Нет соединения", timeout=WAIT)
    send(chat, "Сообщение без интернета")
    pending = chat.locator(".row--pending", has_text="Сообщение без интернета")
    expect(pending).to_be_visible()
    expect(pending).to_have_attribute("data-state", "pending")
    expect(pending.locator(".receipt")).to_have_attribute("aria-label", "Ожидает отправки")
    # The operator answers while the customer is offline.
    operator.reply(ticket, "Ответ, пока вы были офлайн")

    page.context.set_offline(False)
    delivered = customer_row(chat, "Сообщение без интернета")
    expect(delivered).to_have_count(1, timeout=WAIT)
    expect(chat.locator(".row--pending")).to_have_count(0)
    expect(chat.locator("#banner")).to_be_hidden()
    # Reconnected and resumed from the last id: the missed reply, once.
    expect(agent_row(chat, "Ответ, пока вы были офлайн")).to_have_count(1, timeout=WAIT)
    assert operator.count(ticket, "Сообщение без интернета") == 1
    # The outbox is empty, so a reload sends nothing again.
    page.reload()
    chat = open_chat(page, server.url + "/")
    expect(customer_row(chat, "Сообщение без интернета")).to_have_count(1, timeout=WAIT)
    assert operator.count(ticket, "Сообщение без интернета") == 1


def test_operator_typing_shows_in_the_widget(
    server: ServerProcess, new_page, operator: Operator
) -> None:
    operator.go_online()
    page = new_page()
    chat = open_chat(page, server.url + "/")
    send(chat, "Подскажите размер рюкзака")
    ticket = ticket_of(page)
    operator.open_ticket(ticket)
    expect(system_row(chat, "подключился")).to_be_visible(timeout=WAIT)
    operator.typing(ticket, True)
    typing = chat.get_by_text("печатает...")
    expect(typing).to_be_visible(timeout=WAIT)
    expect(chat.locator("#typing")).to_contain_text(ADMIN_NAME)
    shot(page, "widget-typing", animations="disabled")
    operator.typing(ticket, False)
    expect(typing).to_be_hidden(timeout=WAIT)
    # A reply also ends "typing".
    operator.typing(ticket, True)
    expect(typing).to_be_visible(timeout=WAIT)
    operator.reply(ticket, "Объём 22 литра 🎒")
    expect(agent_row(chat, "Объём 22 литра 🎒")).to_be_visible(timeout=WAIT)
    expect(typing).to_be_hidden()
    # And the other way round: the operator sees the customer typing.
    textbox(chat).press_sequentially("А в синем цвете есть?")
    operator.wait_frame(type="typing", ticketId=ticket, sender_type="customer", active=True)
    textbox(chat).press("Enter")
    operator.wait_frame(type="typing", ticketId=ticket, sender_type="customer", active=False)


def test_red_dot_title_and_js_api_when_reply_arrives_closed(
    server: ServerProcess, new_page, operator: Operator
) -> None:
    page = new_page()
    page.goto(server.url + "/")
    page.evaluate(
        """() => { window.__got = [];
                   TrustDesk.on('message', m => window.__got.push(m.message)); }"""
    )
    page.get_by_role("button", name="Открыть чат").click()
    chat = page.frame_locator(FRAME_RU)
    send(chat, "Есть ли скидки?")
    ticket = ticket_of(page)
    expect(customer_row(chat, "Есть ли скидки?")).to_have_count(1, timeout=WAIT)
    page.get_by_role("button", name="Свернуть чат").first.click()
    launcher = page.get_by_role("button", name="Открыть чат")
    expect(launcher).to_be_visible()
    dot = page.locator("trustdesk-widget .dot")
    expect(dot).to_be_hidden()

    reply_id = operator.reply(ticket, "Да, промокод TRUST10 😉")["message"]["id"]
    expect(dot).to_be_visible(timeout=WAIT)
    expect(launcher).to_have_attribute("aria-label", re.compile(r"непрочитанных: 1$"))
    assert "Да, промокод TRUST10 😉" in page.evaluate("() => window.__got")
    # A preview of the reply shows next to the launcher (as text).
    preview = page.locator("trustdesk-widget .preview")
    expect(preview).to_be_visible()
    expect(preview).to_contain_text(ADMIN_NAME)
    expect(preview).to_contain_text("Да, промокод TRUST10 😉")
    shot(page, "widget-red-dot", animations="disabled")

    # While the tab is hidden, the page title carries the unread count.
    fake_hidden(page, True)
    expect(page).to_have_title(re.compile(r"^\(1\) Trust Store"))
    fake_hidden(page, False)
    expect(page).to_have_title(re.compile(r"^Trust Store"))

    # Opening the chat (here from the preview) reads it: the dot goes away.
    preview.get_by_role("button", name=re.compile("TRUST10")).click()
    expect(agent_row(chat, "Да, промокод TRUST10 😉")).to_be_visible()
    expect(dot).to_be_hidden()
    expect(preview).to_be_hidden()
    # The operators learn it was read (their read receipt) ...
    wait_until(
        lambda: (
            next(t for t in operator.tickets() if t["ticketId"] == ticket)["customer_last_read_id"]
            >= reply_id
        ),
        10,
        "the customer's read cursor",
    )
    # ... and the widget remembers it: after a reload there is no dot.
    page.reload()
    expect(page.get_by_role("button", name="Открыть чат")).to_be_visible()
    expect(page.locator("trustdesk-widget iframe")).to_have_count(1)  # preloaded: chatted before
    expect(dot).to_be_hidden()


@pytest.mark.parametrize(
    ("attr", "browser_locale"),
    [('data-locale="en"', "ru-RU"), ("", "en-US")],
    ids=["data-locale", "browser-language"],
)
def test_english(server: ServerProcess, new_page, attr: str, browser_locale: str) -> None:
    page = new_page(locale=browser_locale)
    shop = f"{server.url}/english-shop"
    html = (
        "<!doctype html><html lang='en'><meta charset='utf-8'><title>English Shop</title>"
        f"<h1>English Shop</h1><script src='{server.url}/widget.js' {attr} async></script>"
    )
    page.route(shop, lambda route: route.fulfill(body=html, content_type="text/html"))
    chat = open_chat(page, shop, frame=FRAME_EN, launcher="Open chat")
    expect(chat.get_by_text("Hi! How can I help? 😊")).to_be_visible()
    box = chat.get_by_role("textbox", name="Message")
    expect(box).to_be_visible()
    expect(chat.get_by_role("button", name="Send")).to_be_disabled()
    box.fill("Hello from London")
    chat.get_by_role("button", name="Send").click()
    expect(customer_row(chat, "Hello from London")).to_have_count(1, timeout=WAIT)
    expect(chat.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("button", name="Minimize chat").first).to_be_visible()


def test_phone_sized_screen(server: ServerProcess, new_page, operator: Operator) -> None:
    page = new_page(
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
    )
    page.goto(server.url + "/")
    launcher = page.get_by_role("button", name="Открыть чат")
    launcher.tap()
    chat = page.frame_locator(FRAME_RU)
    expect(textbox(chat)).to_be_visible()
    # Full-screen panel; the launcher steps aside; the input does not make phones zoom.
    frame_box = page.locator(FRAME_RU).bounding_box()
    assert frame_box is not None
    assert frame_box["width"] == pytest.approx(390, abs=1)
    assert frame_box["height"] == pytest.approx(844, abs=1)
    expect(launcher).to_be_hidden()
    size = textbox(chat).evaluate("el => parseFloat(getComputedStyle(el).fontSize)")
    assert size >= 16
    input_box = textbox(chat).bounding_box()
    assert input_box is not None and input_box["y"] + input_box["height"] <= 844

    textbox(chat).tap()
    send(chat, "Подойдёт ли зарядка к iPhone?")
    ticket = ticket_of(page)
    operator.open_ticket(ticket)
    operator.reply(ticket, "Да, подойдёт: поддерживается Qi, 15 Вт 👍")
    expect(agent_row(chat, "Да, подойдёт")).to_be_visible(timeout=WAIT)
    shot(page, "widget-mobile", animations="disabled")
    # The header's close button brings the shop back.
    chat.get_by_role("button", name="Свернуть чат").tap()
    expect(page.get_by_role("button", name="Открыть чат")).to_be_visible()


def test_composer_keys_emoji_text_safety_and_scroll(
    server: ServerProcess, new_page, operator: Operator
) -> None:
    page = new_page()
    chat = open_chat(page, server.url + "/")
    box = textbox(chat)
    # Shift+Enter is a new line, Enter sends.
    box.fill("Строка 1")
    box.press("Shift+Enter")
    box.press_sequentially("Строка 2")
    expect(box).to_have_value("Строка 1\nСтрока 2")
    box.press("Enter")
    expect(customer_row(chat, "Строка 1")).to_have_count(1, timeout=WAIT)
    ticket = ticket_of(page)
    assert operator.count(ticket, "Строка 1\nСтрока 2") == 1
    # Emoji panel.
    chat.get_by_role("button", name="Эмодзи").click()
    chat.get_by_role("button", name="🎁").click()
    expect(box).to_have_value("🎁")
    box.press("Enter")
    expect(customer_row(chat, "🎁")).to_have_count(1, timeout=WAIT)
    # User text is text, never HTML.
    evil = '<img src=x onerror="window.__pwned=1"><b>жирный?</b>'
    operator.reply(ticket, evil)
    row = agent_row(chat, "жирный?")
    expect(row).to_be_visible(timeout=WAIT)
    expect(row.locator(".bubble")).to_have_text(evil)
    expect(row.locator("img, b")).to_have_count(0)
    assert frame_of(page).evaluate("() => window.__pwned") is None

    # Scrolled up to read: a new message does not yank the view, a pill offers it instead.
    for i in range(12):
        operator.reply(ticket, f"Длинная история, часть {i + 1}")
    expect(agent_row(chat, "часть 12")).to_be_visible(timeout=WAIT)
    scroller = chat.locator("#scroller")
    scroller.evaluate("el => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')); }")
    operator.reply(ticket, "Самое новое сообщение")
    expect(chat.get_by_role("button", name="Новые сообщения")).to_be_visible(timeout=WAIT)
    assert scroller.evaluate("el => el.scrollTop") == 0
    chat.get_by_role("button", name="Новые сообщения").click()
    expect(agent_row(chat, "Самое новое сообщение")).to_be_in_viewport()
    expect(chat.get_by_role("button", name="Новые сообщения")).to_be_hidden()


def test_long_polling_when_websocket_is_blocked(
    server: ServerProcess, new_page, operator: Operator
) -> None:
    page = new_page()
    # A network that blocks WebSocket: every frame of the page sees no WebSocket at all.
    page.context.add_init_script("delete window.WebSocket; window.WebSocket = undefined;")
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    chat = open_chat(page, server.url + "/")
    send(chat, "Пишу через прокси")
    expect(customer_row(chat, "Пишу через прокси")).to_have_count(1, timeout=WAIT)
    ticket = ticket_of(page)
    operator.open_ticket(ticket)
    operator.reply(ticket, "Видим вас, всё работает")
    expect(agent_row(chat, "Видим вас, всё работает")).to_have_count(1, timeout=WAIT)
    expect(system_row(chat, "подключился")).to_have_count(1)
    send(chat, "Отлично")
    expect(customer_row(chat, "Отлично")).to_have_count(1, timeout=WAIT)
    assert operator.count(ticket, "Отлично") == 1
    expect(chat.locator("#app")).to_have_attribute("data-conn", "polling")
    assert sockets == []


def test_reconnects_after_server_restart_and_resumes(
    server: ServerProcess, new_page, operator: Operator
) -> None:
    page = new_page()
    chat = open_chat(page, server.url + "/")
    send(chat, "До перезапуска")
    ticket = ticket_of(page)
    expect(customer_row(chat, "До перезапуска")).to_have_count(1, timeout=WAIT)

    server.stop()
    expect(chat.locator("#banner")).to_contain_text("Переподключаемся", timeout=WAIT)
    send(chat, "Во время перезапуска")
    expect(chat.locator(".row--pending", has_text="Во время перезапуска")).to_be_visible()
    server.start()

    # Back with backoff, resumed from the last id: the queued message goes out once.
    expect(customer_row(chat, "Во время перезапуска")).to_have_count(1, timeout=30_000)
    expect(chat.locator("#banner")).to_be_hidden()
    expect(chat.locator("#app")).to_have_attribute("data-conn", "online")  # WebSocket again
    operator.reply(ticket, "Мы снова на связи")
    expect(agent_row(chat, "Мы снова на связи")).to_have_count(1, timeout=WAIT)
    assert operator.count(ticket, "Во время перезапуска") == 1
    assert operator.count(ticket, "До перезапуска") == 1
    expect(chat.locator(".row[data-id]", has_text="До перезапуска")).to_have_count(1)


def test_sound_on_new_message_and_mute(server: ServerProcess, new_page, operator: Operator) -> None:
    page = new_page()
    # Count the chimes: every frame's AudioContext reports the oscillators it makes.
    page.context.add_init_script(
        """window.__beeps = 0;
        const make = AudioContext.prototype.createOscillator;
        AudioContext.prototype.createOscillator = function () {
            window.__beeps += 1; return make.call(this); };"""
    )
    chat = open_chat(page, server.url + "/")
    send(chat, "Звук есть?")
    ticket = ticket_of(page)
    frame = frame_of(page)
    operator.reply(ticket, "Дзынь 🔔")
    expect(agent_row(chat, "Дзынь 🔔")).to_be_visible(timeout=WAIT)
    frame.wait_for_function("() => window.__beeps > 0", timeout=WAIT)
    beeps = frame.evaluate("() => window.__beeps")

    mute = chat.get_by_role("button", name="Выключить звук")
    mute.click()
    expect(chat.get_by_role("button", name="Включить звук")).to_have_attribute(
        "aria-pressed", "true"
    )
    operator.reply(ticket, "Тихое сообщение")
    expect(agent_row(chat, "Тихое сообщение")).to_be_visible(timeout=WAIT)
    assert frame.evaluate("() => window.__beeps") == beeps
    assert frame.evaluate("() => localStorage.getItem('trustdesk.muted')") == "1"
