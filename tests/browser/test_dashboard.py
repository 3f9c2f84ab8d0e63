"""The operator dashboard (/admin) in real headless Chromium against a real server.

The customer side is driven over the real visitor API (HTTP with the bearer token) and,
for typing / online / read receipts, a real visitor WebSocket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import websockets
from playwright.sync_api import Page, expect

from tests.browser.conftest import shot
from tests.support.server import ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, ServerProcess
from tests.support.services import wait_until

pytestmark = pytest.mark.browser

AGENT_EMAIL = "maria@trust.store"
AGENT_NAME = "Мария"
AGENT_PASSWORD = "another long passphrase 42"  # noqa: S105 - test fixture
CHROME_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
)

# ---------------------------------------------------------------- customer side


class Customer:
    """A shop visitor, over the real widget HTTP API."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.url, timeout=30, headers={"User-Agent": CHROME_UA})
        r = self.http.post("/api/support/session")
        assert r.status_code == 201, r.text
        self.token: str = r.json()["token"]
        self.http.headers["Authorization"] = f"Bearer {self.token}"
        self.ticket_id: str | None = None

    def send(self, text: str) -> dict[str, Any]:
        body: dict[str, Any] = {"message": text, "client_msg_id": str(uuid.uuid4())}
        if self.ticket_id:
            body["ticketId"] = self.ticket_id
        r = self.http.post("/api/support/send-message", json=body)
        assert r.status_code == 200, r.text
        self.ticket_id = r.json()["ticketId"]
        return r.json()["message"]

    def messages(self) -> list[dict[str, Any]]:
        r = self.http.get(f"/api/support/messages/{self.ticket_id}", params={"after": 0})
        assert r.status_code == 200, r.text
        return r.json()["messages"]

    def texts(self) -> list[str]:
        return [m["message"] for m in self.messages()]

    def wait_for_text(self, text: str, timeout: float = 10) -> None:
        wait_until(lambda: text in self.texts(), timeout, f"customer sees {text!r}")


class VisitorSocket:
    """The widget's WebSocket in a background thread: online presence, typing, read."""

    def __init__(self, customer: Customer, page_url: str) -> None:
        self.customer = customer
        self.page_url = page_url
        self.frames: list[dict[str, Any]] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._typing: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self.conn: Any = self._run(self._connect())

    def _run(self, coro: Any, timeout: float = 15) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _connect(self) -> Any:
        srv = self.customer.server
        conn = await websockets.connect(
            srv.ws_url + "/ws/visitor",
            origin=srv.url,  # type: ignore[arg-type]
            user_agent_header=CHROME_UA,
            open_timeout=10,
        )
        hello = {
            "type": "hello",
            "token": self.customer.token,
            "ticketId": self.customer.ticket_id,
            "since": 0,
            "page_url": self.page_url,
        }
        await conn.send(json.dumps(hello))
        ready = json.loads(await asyncio.wait_for(conn.recv(), 10))
        assert ready["type"] == "ready", ready
        self._reader = asyncio.ensure_future(self._read(conn))
        return conn

    async def _read(self, conn: Any) -> None:
        with contextlib.suppress(Exception):
            async for raw in conn:
                self.frames.append(json.loads(raw))

    async def _keep_typing(self) -> None:
        while True:
            await self.conn.send(json.dumps({"type": "typing", "active": True}))
            await asyncio.sleep(2)

    def start_typing(self) -> None:
        async def start() -> None:
            self._typing = asyncio.ensure_future(self._keep_typing())

        self._run(start())

    def stop_typing(self) -> None:
        async def stop() -> None:
            if self._typing:
                self._typing.cancel()
                self._typing = None
            await self.conn.send(json.dumps({"type": "typing", "active": False}))

        self._run(stop())

    def read(self, last_read_id: int) -> None:
        self._run(self.conn.send(json.dumps({"type": "read", "last_read_id": last_read_id})))

    def close(self) -> None:
        async def close() -> None:
            if self._typing:
                self._typing.cancel()
            await self.conn.close()

        with contextlib.suppress(Exception):
            self._run(close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@contextlib.contextmanager
def visitor_socket(customer: Customer, page_url: str) -> Iterator[VisitorSocket]:
    vs = VisitorSocket(customer, page_url)
    try:
        yield vs
    finally:
        vs.close()


# ---------------------------------------------------------------- operator side


@pytest.fixture(scope="module")
def agent(server: ServerProcess) -> ServerProcess:
    """A second operator (role agent), added with the CLI while the server runs."""
    server.create_operator(AGENT_EMAIL, AGENT_NAME, AGENT_PASSWORD, role="agent")
    return server


def watch_errors(page: Page) -> list[str]:
    """Collect page errors and CSP violations: there must be none."""
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))

    def on_console(msg: Any) -> None:
        if msg.type == "error" and "Content Security Policy" in msg.text:
            errors.append(f"csp: {msg.text}")

    page.on("console", on_console)
    return errors


def login(
    page: Page,
    server: ServerProcess,
    email: str = ADMIN_EMAIL,
    password: str = ADMIN_PASSWORD,
    path: str = "/admin",
) -> None:
    page.goto(server.url + path)
    page.get_by_label("Email").fill(email)
    page.get_by_label(re.compile("^(Пароль|Password)$")).fill(password)
    page.get_by_role("button", name=re.compile("^(Войти|Log in)$")).click()
    expect(page.get_by_role("heading", name=re.compile("^(Тикеты|Tickets)$"))).to_be_visible()
    wait_live(page)


def wait_live(page: Page) -> None:
    """The dashboard's WebSocket is connected (from here on, everything arrives live)."""
    expect(page.locator("html")).to_have_attribute("data-live", "on")


def wait_in_page(page: Page, predicate: Callable[[], bool], what: str, timeout: float = 10) -> None:
    """Poll while letting Playwright deliver its events (time.sleep would block them)."""
    for _ in range(int(timeout * 10)):
        if predicate():
            return
        page.wait_for_timeout(100)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def row(page: Page, ticket_id: str) -> Any:
    return page.locator(f".ticket-row[data-ticket-id='{ticket_id}']")


def conversation(page: Page) -> Any:
    return page.get_by_role("log")


def open_ticket(page: Page, ticket_id: str) -> None:
    row(page, ticket_id).click()
    expect(page.get_by_role("textbox", name="Ответ")).to_be_enabled()


def nav_badge(page: Page) -> Any:
    return page.locator(".nav-item[data-view='tickets'] .nav-badge")


def badge_count(page: Page) -> int:
    loc = nav_badge(page)
    if not loc.is_visible():
        return 0
    return int(loc.inner_text())


# ---------------------------------------------------------------- tests


def test_login_errors_and_lockout_message(
    server: ServerProcess, new_page: Callable[..., Page]
) -> None:
    page = new_page()
    errors = watch_errors(page)
    page.goto(server.url + "/admin")
    expect(page).to_have_title("Вход — TrustDesk")
    shot(page, "dashboard-login")
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Пароль").fill("not the password")
    page.get_by_role("button", name="Войти").click()
    expect(page.get_by_role("alert")).to_have_text("Неверный email или пароль.")
    expect(page.get_by_role("button", name="Войти")).to_be_enabled()

    # The server's lock-out answer (429 + Retry-After) becomes a polite message with the
    # wait; the real limiter is not tripped here (it would lock the other tests out).
    page.route(
        "**/api/admin/login",
        lambda route: route.fulfill(
            status=429,
            headers={"Retry-After": "120", "Content-Type": "application/json"},
            body=json.dumps({"error": {"code": "rate_limited", "message": "too many"}}),
        ),
    )
    page.get_by_role("button", name="Войти").click()
    expect(page.get_by_role("alert")).to_contain_text("Слишком много попыток входа")
    expect(page.get_by_role("alert")).to_contain_text("2 мин.")
    expect(page.get_by_role("button", name="Войти")).to_be_disabled()
    page.unroute("**/api/admin/login")

    # A real login, "who am I" in the header, logout.
    page.reload()
    login(page, server)
    expect(page.locator(".whoami")).to_contain_text(ADMIN_NAME)
    page.get_by_role("button", name="Выйти").click()
    expect(page.get_by_role("button", name="Войти")).to_be_visible()
    page.reload()
    expect(page.get_by_role("button", name="Войти")).to_be_visible()  # the session is gone
    assert errors == []


def test_spec_manual_flow(server: ServerProcess, new_page: Callable[..., Page]) -> None:
    """The spec's 12-step manual test, with the dashboard driven through its UI."""
    customer = Customer(server)
    customer.send("Тест связи")  # steps 1-3
    ticket_id = customer.ticket_id
    assert ticket_id

    page = new_page()
    errors = watch_errors(page)
    page.goto(server.url + "/admin.html")  # step 4: the spec's address still works
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Пароль").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Войти").click()
    page.get_by_role("link", name="Тикеты").click()  # step 5
    expect(page.get_by_role("heading", name="Тикеты")).to_be_visible()
    expect(row(page, ticket_id)).to_contain_text("Гость")

    open_ticket(page, ticket_id)  # step 6
    log = conversation(page)
    expect(log.get_by_text("Тест связи")).to_be_visible()
    expect(log.get_by_text("Оператор Артём подключился")).to_be_visible()
    expect(log.locator(".msg.customer .msg-author").first).to_have_text(
        re.compile(r"^👥 Гость #\d{4}$")
    )
    customer.wait_for_text("👨‍💼 Оператор Артём подключился к диалогу")

    # With the live socket up, replies go over it: no HTTP request per message.
    expect(page.locator("html")).to_have_attribute("data-live", "on")
    http_replies: list[str] = []
    page.on(
        "request",
        lambda r: http_replies.append(r.url) if "/api/admin/support/reply" in r.url else None,
    )
    reply = page.get_by_role("textbox", name="Ответ")
    reply.fill("Привет! Как дела?")  # step 7
    reply.press("Enter")
    expect(reply).to_have_value("")
    expect(log.locator(".msg.admin").get_by_text("Привет! Как дела?")).to_be_visible()
    customer.wait_for_text("Привет! Как дела?")  # steps 8-9

    # Shift+Enter makes a new line instead of sending.
    reply.fill("Строка 1")
    reply.press("Shift+Enter")
    reply.press_sequentially("Строка 2")
    expect(reply).to_have_value("Строка 1\nСтрока 2")
    page.get_by_role("button", name="Отправить").click()
    customer.wait_for_text("Строка 1\nСтрока 2")
    assert http_replies == []

    page.get_by_role("button", name="Закрыть тикет").click()  # step 10
    expect(log.get_by_text("✅ Тикет закрыт. Спасибо за обращение!")).to_be_visible()
    customer.wait_for_text("✅ Тикет закрыт. Спасибо за обращение!")  # steps 11-12
    assert customer.http.get(f"/api/support/messages/{ticket_id}").json()["status"] == "closed"
    assert errors == []


def test_live_list_badges_and_title(server: ServerProcess, new_page: Callable[..., Page]) -> None:
    other = Customer(server)
    other.send("Здравствуйте! Хочу вернуть худи, не подошёл размер")
    first, second = Customer(server), Customer(server)
    first.send("Здравствуйте, как оплатить заказ?")
    second.send("Добрый день! Где мой заказ №5512?")

    page = new_page()
    errors = watch_errors(page)
    login(page, server)
    expect(row(page, second.ticket_id)).to_be_visible()
    rows = page.locator(".ticket-row")
    expect(rows.first).to_have_attribute("data-ticket-id", second.ticket_id)
    expect(row(page, first.ticket_id).locator(".row-badge")).to_have_text("1")
    before = badge_count(page)
    assert before >= 2

    # A new customer message while the list is open: its row jumps to the top, its badge
    # and the total grow, and so does the count in the tab title, without a reload.
    first.send("Можно ли оплатить картой при получении?")
    expect(rows.first).to_have_attribute("data-ticket-id", first.ticket_id)
    expect(row(page, first.ticket_id).locator(".row-badge")).to_have_text("2")
    expect(nav_badge(page)).to_have_text(str(before + 1))
    expect(page).to_have_title(f"({before + 1}) Тикеты — TrustDesk")
    expect(row(page, first.ticket_id).locator(".row-preview")).to_have_text(
        "Можно ли оплатить картой при получении?"
    )
    shot(page, "dashboard-list")

    # A brand-new ticket appears on top by itself.
    third = Customer(server)
    third.send("<img src=x onerror=alert(1)> Подскажите размер")
    expect(rows.first).to_have_attribute("data-ticket-id", third.ticket_id)
    expect(nav_badge(page)).to_have_text(str(before + 2))

    # Search over the ticket id and the message text.
    search = page.get_by_role("searchbox", name="Поиск тикетов")
    search.fill("картой")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-ticket-id", first.ticket_id)
    search.fill(second.ticket_id)
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-ticket-id", second.ticket_id)
    search.fill("")
    expect(row(page, third.ticket_id)).to_be_visible()

    # Opening a ticket marks it read: its badge goes and the total drops.
    open_ticket(page, third.ticket_id)
    log = conversation(page)
    # User text is text: the markup shows literally and nothing ran.
    expect(log.get_by_text("<img src=x onerror=alert(1)> Подскажите размер")).to_be_visible()
    assert log.locator("img").count() == 0
    expect(row(page, third.ticket_id).locator(".row-badge")).to_have_count(0)
    expect(nav_badge(page)).to_have_text(str(before + 1))
    expect(page).to_have_title(f"({before + 1}) Тикеты — TrustDesk")

    # A message in the ticket being read does not count as unread.
    third.send("Размер M или L?")
    expect(log.get_by_text("Размер M или L?")).to_be_visible()
    expect(nav_badge(page)).to_have_text(str(before + 1))
    assert errors == []


def test_typing_note_receipts_and_visitor_info(
    server: ServerProcess, new_page: Callable[..., Page]
) -> None:
    customer = Customer(server)
    customer.send("Здравствуйте! Заказ №5521 пришёл не того размера")
    customer.send("Можно обменять на L?")
    page = new_page()
    errors = watch_errors(page)
    login(page, server)

    with visitor_socket(customer, "https://trust.store/catalog/hoodie-basic?size=M") as vs:
        open_ticket(page, customer.ticket_id)
        log = conversation(page)
        info = page.get_by_role("complementary", name="О покупателе")
        visitor_state = info.locator(".customer-card .online-text")
        expect(visitor_state).to_have_text("в сети")
        expect(info.get_by_role("link", name=re.compile("hoodie-basic"))).to_be_visible()
        expect(info).to_contain_text("Chrome 126 · Windows")

        reply = page.get_by_role("textbox", name="Ответ")
        reply.fill("Конечно! Оформим обмен, пришлите, пожалуйста, фото бирки.")
        reply.press("Enter")
        own = log.locator(".msg.admin").filter(has_text="фото бирки")
        expect(own.locator(".receipt")).to_have_text("✓")
        # The customer reads it: ✓✓ on the operator's messages up to that id.
        wait_until(lambda: any("фото бирки" in t for t in customer.texts()), 10, "reply delivered")
        last_id = max(m["id"] for m in customer.messages())
        vs.read(last_id)
        expect(own.locator(".receipt.read")).to_have_text("✓✓")

        # A private note: yellow, 🔒, for operators only.
        page.get_by_role("tab", name="Заметка").click()
        note_box = page.get_by_role("textbox", name="Заметка")
        note_box.fill("Проверить остатки L на складе перед обменом")
        page.get_by_role("button", name="Сохранить заметку").click()
        # (a note of its own: the first reply's "Артём взял тикет" is an event pill)
        note = log.locator(".msg.note").filter(has_text="Проверить остатки")
        expect(note).to_contain_text("🔒 Заметка")
        expect(note).to_contain_text("Проверить остатки L на складе перед обменом")
        page.get_by_role("tab", name="Ответ").click()

        # The customer types: "печатает…" live in the conversation and in the list.
        vs.start_typing()
        expect(page.locator(".typing-line")).to_contain_text(re.compile(r"Гость #\d{4} печатает…"))
        expect(row(page, customer.ticket_id).locator(".row-preview")).to_have_text("печатает…")
        shot(page, "dashboard-ticket")
        vs.stop_typing()
        expect(page.locator(".typing-line")).not_to_contain_text("печатает")

        # The operator's own typing reaches the customer's socket.
        reply.press_sequentially("Уже смотрю", delay=30)
        wait_until(
            lambda: any(
                f.get("type") == "typing" and f.get("active") and f.get("sender_type") == "admin"
                for f in list(vs.frames)
            ),
            10,
            "operator typing frame at the visitor",
        )

    # The customer goes away: offline in the panel.
    expect(visitor_state).to_have_text("не в сети")

    # The note never reaches the customer.
    texts = customer.texts()
    assert not any("остатки" in t for t in texts), texts
    assert all(m.get("kind", "text") != "note" for m in customer.messages())
    assert errors == []


def test_two_operators_assignment_presence_and_live_replies(
    agent: ServerProcess, new_page: Callable[..., Page]
) -> None:
    server = agent
    customer = Customer(server)
    customer.send("У меня вопрос по возврату")

    artem = new_page()
    maria = new_page()
    errors = watch_errors(artem) + watch_errors(maria)
    login(artem, server)
    login(maria, server, AGENT_EMAIL, AGENT_PASSWORD)

    # Presence: Артём sees Мария come online.
    open_ticket(artem, customer.ticket_id)
    artem_info = artem.get_by_role("complementary", name="О покупателе")
    expect(
        artem_info.locator(".team-row", has_text=AGENT_NAME).get_by_text("в сети", exact=True)
    ).to_be_visible()

    # Assign to Мария; she sees it under "Мои" live.
    maria.get_by_role("button", name="Мои").click()
    assign = artem_info.get_by_label("Назначить оператора")
    maria_id = assign.locator("option", has_text=AGENT_NAME).get_attribute("value")
    assign.select_option(value=maria_id)
    expect(artem.locator(".conv-header")).to_contain_text(f"👤 {AGENT_NAME}")
    expect(row(maria, customer.ticket_id)).to_be_visible()
    expect(row(maria, customer.ticket_id)).to_contain_text(f"👤 {AGENT_NAME}")

    # Both on the same ticket: each sees the other's replies and typing live.
    open_ticket(maria, customer.ticket_id)
    expect(conversation(artem).get_by_text("Оператор Мария подключился")).to_be_visible()
    maria_reply = maria.get_by_role("textbox", name="Ответ")
    maria_reply.press_sequentially("Сейчас проверю", delay=40)
    expect(artem.locator(".typing-line")).to_contain_text("Мария печатает…")
    maria_reply.fill("Здравствуйте! Возврат оформим за 1 день.")
    maria_reply.press("Enter")
    expect(
        conversation(artem).get_by_text("Здравствуйте! Возврат оформим за 1 день.")
    ).to_be_visible()
    expect(artem.locator(".typing-line")).not_to_contain_text("Мария")
    artem.get_by_role("textbox", name="Ответ").fill("Мария, спасибо!")
    artem.get_by_role("button", name="Отправить").click()
    expect(conversation(maria).get_by_text("Мария, спасибо!")).to_be_visible()

    # Артём takes it himself, then unassigns; Мария's "Мои" list follows.
    artem.get_by_role("button", name="Взять себе").click()
    expect(artem.locator(".conv-header")).to_contain_text(f"👤 {ADMIN_NAME}")
    expect(row(maria, customer.ticket_id)).to_have_count(0)  # no longer under "Мои"
    assign.select_option(value="")
    maria.get_by_role("button", name="Без оператора").click()
    expect(row(maria, customer.ticket_id)).to_be_visible()
    expect(row(maria, customer.ticket_id).locator(".row-assignee")).to_have_text("не назначен")

    # Мария leaves: Артём sees her offline.
    maria.context.close()
    expect(
        artem_info.locator(".team-row", has_text=AGENT_NAME).get_by_text("не в сети", exact=True)
    ).to_be_visible(timeout=15_000)
    assert errors == []


def test_canned_response(server: ServerProcess, new_page: Callable[..., Page]) -> None:
    customer = Customer(server)
    customer.send("Сколько идёт доставка в Казань?")
    page = new_page()
    errors = watch_errors(page)
    login(page, server)

    page.get_by_role("link", name="Настройки").click()
    expect(page.get_by_role("heading", name="Шаблоны ответов")).to_be_visible()
    templates = page.get_by_role("region", name="Шаблоны ответов")  # labels have a "Название" too
    templates.get_by_label("Название").fill("dostavka")
    templates.get_by_label("Текст шаблона").fill("Доставка по России занимает 2–5 рабочих дней.")
    page.get_by_role("button", name="Добавить шаблон").click()
    expect(page.locator(".canned-row", has_text="/dostavka")).to_be_visible()

    page.get_by_role("link", name="Тикеты").click()
    open_ticket(page, customer.ticket_id)
    reply = page.get_by_role("textbox", name="Ответ")
    reply.press_sequentially("/dost")
    option = page.get_by_role("option", name="/dostavka")
    expect(option).to_be_visible()
    reply.press("Enter")  # picks the highlighted template, does not send
    expect(reply).to_have_value("Доставка по России занимает 2–5 рабочих дней.")
    expect(option).to_be_hidden()
    reply.press("Enter")
    sent = conversation(page).locator(".msg.admin[data-id]")
    expect(sent.filter(has_text="Доставка по России")).to_be_visible()
    customer.wait_for_text("Доставка по России занимает 2–5 рабочих дней.")

    # Picking with the mouse works too, in the middle of a sentence.
    reply.press_sequentially("Здравствуйте! /dos")
    page.get_by_role("option", name="/dostavka").click()
    expect(reply).to_have_value("Здравствуйте! Доставка по России занимает 2–5 рабочих дней.")
    assert errors == []


def test_close_reopen_and_system_message(
    server: ServerProcess, new_page: Callable[..., Page]
) -> None:
    customer = Customer(server)
    customer.send("Спасибо, вопрос решён")
    page = new_page()
    login(page, server)
    open_ticket(page, customer.ticket_id)
    log = conversation(page)

    page.get_by_role("button", name="Закрыть тикет").click()
    expect(page.get_by_role("button", name="Открыть повторно")).to_be_visible()
    expect(page.get_by_role("button", name="Закрыть тикет")).to_have_count(0)
    expect(page.locator(".conv-header .pill")).to_have_text("Закрыт")
    customer.wait_for_text("✅ Тикет закрыт. Спасибо за обращение!")
    # Not under "Открытые" any more, but under "Закрытые".
    expect(row(page, customer.ticket_id)).to_have_count(0)
    page.get_by_role("button", name="Закрытые").click()
    expect(row(page, customer.ticket_id)).to_be_visible()

    page.get_by_role("button", name="Открыть повторно").click()
    expect(log.get_by_text("Тикет открыт повторно")).to_be_visible()
    expect(page.get_by_role("button", name="Закрыть тикет")).to_be_visible()
    customer.wait_for_text("Тикет открыт повторно")

    page.get_by_role("tab", name="Системное").click()
    page.get_by_role("textbox", name="Системное сообщение").fill("Магазин работает до 21:00")
    page.get_by_role("button", name="Отправить системное").click()
    expect(log.locator(".msg.system").get_by_text("Магазин работает до 21:00")).to_be_visible()
    customer.wait_for_text("Магазин работает до 21:00")


def test_english_toggle(server: ServerProcess, new_page: Callable[..., Page]) -> None:
    page = new_page()
    page.goto(server.url + "/admin")
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    expect(page.get_by_label("Password")).to_be_visible()
    expect(page).to_have_title("Log in — TrustDesk")
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Tickets")).to_be_visible()
    expect(page.get_by_role("button", name="Open", exact=True)).to_be_visible()
    page.reload()  # remembered in localStorage
    expect(page.get_by_role("heading", name="Tickets")).to_be_visible()
    page.get_by_role("button", name="Русский").click()
    expect(page.get_by_role("heading", name="Тикеты")).to_be_visible()
    page.goto(server.url + "/admin?lang=en")
    expect(page.get_by_role("heading", name="Tickets")).to_be_visible()

    customer = Customer(server)
    customer.send("Hello, do you ship to Berlin?")
    row(page, customer.ticket_id).click()
    expect(page.get_by_role("textbox", name="Reply")).to_be_enabled()
    expect(page.get_by_role("button", name="Send")).to_be_visible()
    expect(page.get_by_role("button", name="Close ticket")).to_be_visible()
    page.get_by_role("button", name="Close ticket").click()
    expect(page.get_by_role("button", name="Reopen")).to_be_visible()


def test_mobile_layout(server: ServerProcess, new_page: Callable[..., Page]) -> None:
    customer = Customer(server)
    customer.send("Пишу с телефона: есть ли самовывоз?")
    page = new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    login(page, server)
    expect(row(page, customer.ticket_id)).to_be_visible()
    row(page, customer.ticket_id).click()
    reply = page.get_by_role("textbox", name="Ответ")
    expect(reply).to_be_visible()
    expect(page.get_by_role("heading", name="Тикеты")).to_be_hidden()  # separate screens
    reply.fill("Да, самовывоз из пункта на Тверской, 7.")
    page.get_by_role("button", name="Отправить").click()
    expect(conversation(page).get_by_text("самовывоз из пункта")).to_be_visible()
    customer.wait_for_text("Да, самовывоз из пункта на Тверской, 7.")
    shot(page, "dashboard-mobile")
    page.get_by_role("link", name="Назад к тикетам").click()
    expect(page.get_by_role("heading", name="Тикеты")).to_be_visible()
    expect(reply).to_be_hidden()


def test_operator_management(agent: ServerProcess, new_page: Callable[..., Page]) -> None:
    server = agent
    page = new_page()
    login(page, server)
    page.get_by_role("link", name="Настройки").click()
    ops = page.locator(".ops-list")
    expect(ops).to_contain_text(AGENT_EMAIL)

    page.get_by_label("Имя", exact=True).fill("Олег")
    page.get_by_label("Email оператора").fill("oleg@trust.store")
    page.get_by_label("Пароль оператора").fill("oleg first password")
    page.get_by_role("button", name="Добавить оператора").click()
    oleg = page.locator(".op-row", has_text="oleg@trust.store")
    expect(oleg).to_be_visible()

    oleg.get_by_role("button", name="Сменить пароль: Олег").click()
    oleg.get_by_label("Новый пароль для Олег").fill("oleg second password")
    oleg.get_by_role("button", name="Сохранить пароль").click()
    expect(oleg).to_contain_text("Пароль изменён.")
    ok = httpx.post(
        server.url + "/api/admin/login",
        json={"email": "oleg@trust.store", "password": "oleg second password"},
    )
    assert ok.status_code == 200, ok.text

    # Roles: Олег becomes an admin and back; the audit log has both.
    role = oleg.get_by_role("combobox", name="Роль: Олег")
    expect(role).to_have_value("agent")
    role.select_option("admin")
    expect(oleg.locator(".op-text")).to_contain_text("· администратор ·")
    expect(oleg.get_by_role("combobox", name="Роль: Олег")).to_have_value("admin")
    shot(page, "dashboard-operator-role")
    oleg.get_by_role("combobox", name="Роль: Олег").select_option("agent")
    expect(oleg.locator(".op-text")).to_contain_text("· оператор ·")

    oleg.get_by_role("button", name="Отключить: Олег").click()
    oleg.get_by_role("button", name="Да, отключить").click()
    expect(oleg).to_contain_text("отключён")
    gone = httpx.post(
        server.url + "/api/admin/login",
        json={"email": "oleg@trust.store", "password": "oleg second password"},
    )
    assert gone.status_code == 401, gone.text

    # An agent sees no operator management.
    agent_page = new_page()
    login(agent_page, server, AGENT_EMAIL, AGENT_PASSWORD)
    agent_page.get_by_role("link", name="Настройки").click()
    expect(agent_page.get_by_role("heading", name="Шаблоны ответов")).to_be_visible()
    expect(agent_page.get_by_role("heading", name="Операторы")).to_have_count(0)


def test_sound_toggle_persists(server: ServerProcess, new_page: Callable[..., Page]) -> None:
    page = new_page()
    login(page, server)
    page.get_by_role("button", name="Выключить звук").click()
    expect(page.get_by_role("button", name="Включить звук")).to_have_attribute(
        "aria-pressed", "true"
    )
    page.reload()
    expect(page.get_by_role("button", name="Включить звук")).to_be_visible()
    wait_live(page)
    assert page.evaluate("localStorage.getItem('trustdesk.admin.muted')") == "1"
    page.get_by_role("button", name="Включить звук").click()
    expect(page.get_by_role("button", name="Выключить звук")).to_be_visible()

    # With sound on, a customer message rings the chime (Web Audio).
    customer = Customer(server)
    customer.send("Дзынь?")
    expect(page.locator("html")).to_have_attribute("data-last-chime", re.compile(r"^\d+$"))


# Playwright's browser contexts are incognito profiles, where Chromium refuses the Push API
# itself ("not supported in incognito"), and there is no push service in a sandbox anyway.
# So PushManager.subscribe is stood in for with a fixed subscription; everything around it
# is real: permission, service worker registration, the server's VAPID key, the POST.
FAKE_PUSH = """
PushManager.prototype.subscribe = async function (opts) {
  const raw = new Uint8Array(opts.applicationServerKey);
  window.__vapidKey = btoa(String.fromCharCode(...raw))
    .replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
  return {
    endpoint: "https://push.example.test/send/dashboard-test",
    toJSON() {
      return { endpoint: this.endpoint, keys: {
        p256dh: "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1"
          + "XbjhazAkj7I99e8QcYP7DkM",
        auth: "tBHItJI5svbpez7KI4CCXg" } };
    },
  };
};
PushManager.prototype.getSubscription = async function () { return null; };
"""


def test_push_notifications(server: ServerProcess, new_page: Callable[..., Page]) -> None:
    if httpx.get(server.url + "/api/admin/push/key").status_code == 404:
        pytest.skip("the backend has no /api/admin/push/* endpoints yet")
    sw = httpx.get(server.url + "/admin/sw.js")
    assert sw.status_code == 200
    assert "javascript" in sw.headers["content-type"]

    page = new_page(permissions=["notifications"])
    page.context.add_init_script(FAKE_PUSH)
    errors = watch_errors(page)
    login(page, server)
    with page.expect_response("**/api/admin/push/subscribe") as posted:
        page.get_by_role("button", name="Включить уведомления").click()
    assert posted.value.status == 200, posted.value.text()
    body = posted.value.request.post_data_json
    assert body["endpoint"] == "https://push.example.test/send/dashboard-test"
    assert set(body["keys"]) == {"p256dh", "auth"}
    expect(page.locator(".toast")).to_have_text("Уведомления включены")
    expect(page.get_by_role("button", name="Включить уведомления")).to_be_hidden()
    key = page.evaluate("fetch('/api/admin/push/key').then(r => r.json())")["public_key"]
    assert page.evaluate("window.__vapidKey") == key

    # The service worker shows a notification for a push (delivered through DevTools).
    cdp = page.context.new_cdp_session(page)
    regs: list[dict[str, Any]] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: regs.extend(e["registrations"]))
    cdp.send("ServiceWorker.enable")
    wait_in_page(page, lambda: any(r["scopeURL"].endswith("/admin/") for r in regs), "the worker")
    reg = next(r for r in regs if r["scopeURL"].endswith("/admin/"))
    payload = {
        "title": "Гость · TKT-42",
        "body": "Тест связи",
        "ticketId": "TKT-42",
        "url": "/admin#/ticket/TKT-42",
    }
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {
            "origin": server.url,
            "registrationId": reg["registrationId"],
            "data": json.dumps(payload),
        },
    )
    shown = """navigator.serviceWorker.getRegistration('/admin/')
        .then(r => r.getNotifications())
        .then(ns => ns.map(n => [n.title, n.body, n.data && n.data.url]))"""
    wait_in_page(page, lambda: page.evaluate(shown) != [], "a notification")
    assert page.evaluate(shown) == [["Гость · TKT-42", "Тест связи", "/admin#/ticket/TKT-42"]]
    assert errors == []
