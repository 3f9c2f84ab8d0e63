"""The operator's outbox (web/admin/outbox.js, issue 21.1), in real headless Chromium: a reply
written while the server is down waits as pending, survives a reload, and reaches the customer
exactly once when the server is back; the composer shows no error afterwards."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, Route, WebSocketRoute, expect

from tests.browser.conftest import shot
from tests.browser.test_dashboard import conversation, login, open_ticket, wait_in_page
from tests.support.clients import VisitorClient
from tests.support.payloads import png
from tests.support.server import ServerProcess

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def patient_expect() -> Iterator[None]:
    expect.set_options(timeout=15_000)  # a small, busy machine
    yield
    expect.set_options(timeout=5_000)


def _reply_box(page: Page) -> Any:
    return page.get_by_role("textbox", name="Ответ")


def _composer_error(page: Page) -> Any:
    return page.locator(".composer .composer-error")


def _pending(page: Page, text: str) -> Any:
    return conversation(page).locator(".msg.pending", has_text=text)


def _stored(page: Page, text: str) -> Any:
    return conversation(page).locator(".msg.admin:not(.pending)", has_text=text)


def _customer_count(v: VisitorClient, text: str) -> int:
    return v.texts().count(text)


def _queued(page: Page) -> int:
    n: int = page.evaluate(
        """() => Object.keys(localStorage)
            .filter((k) => k.startsWith("trustdesk.admin.outbox"))
            .reduce((n, k) => n + JSON.parse(localStorage.getItem(k) || "[]").length, 0)"""
    )
    return n


def test_reply_waits_for_a_stopped_server_across_a_reload(
    server: ServerProcess, new_page: Callable[..., Page]
) -> None:
    v = VisitorClient(server.url)
    ticket = v.send("Здравствуйте! Где мой заказ 5531?")["ticketId"]
    page = new_page(viewport={"width": 1280, "height": 800})
    login(page, server)
    open_ticket(page, ticket)
    port = server.port

    # The server stops; the operator presses Enter anyway.
    server.stop()
    expect(page.locator("html")).to_have_attribute("data-live", "off")
    text = "Заказ 5531 уже у курьера, привезут сегодня до 18:00."
    _reply_box(page).fill(text)
    _reply_box(page).press("Enter")
    row = _pending(page, text)
    expect(row).to_have_attribute("data-pending", "waiting")
    expect(row).to_contain_text("Нет связи с сервером")
    expect(_composer_error(page)).to_have_text("")
    assert _queued(page) == 1
    shot(page, "operator-outbox-pending")

    # A manual retry while the server is still down: it keeps waiting, no error in the composer.
    row.get_by_role("button", name="Повторить сейчас").click()
    expect(row).to_have_attribute("data-pending", "waiting")
    expect(_composer_error(page)).to_have_text("")

    # The tab is reloaded while the server is down (the browser shows its error page)…
    with pytest.raises(PlaywrightError):
        page.reload()
    # …and the server comes back on the same data and port.
    server.start()
    assert server.port == port
    page.goto(f"{server.url}/admin#/tickets/{ticket}")
    expect(_stored(page, text)).to_have_count(1)
    expect(conversation(page).locator(".msg.pending")).to_have_count(0)
    wait_in_page(page, lambda: _queued(page) == 0, "the outbox to empty")
    assert _customer_count(v, text) == 1
    expect(_composer_error(page)).to_have_text("")
    shot(page, "operator-outbox-recovered")
    # Once, not once for now: another reload sends nothing again.
    page.reload()
    expect(_stored(page, text)).to_have_count(1)
    assert _customer_count(v, text) == 1


def test_pending_reply_reappears_after_reload_and_is_sent_once(
    server: ServerProcess, new_page: Callable[..., Page]
) -> None:
    """The page loads, but sending fails (the reply endpoint and the socket are cut off): the
    reply shows as pending, is still pending after a reload, and goes once they are back."""
    v = VisitorClient(server.url)
    ticket = v.send("Можно поменять адрес доставки?")["ticketId"]
    page = new_page(viewport={"width": 1280, "height": 800})
    login(page, server)
    open_ticket(page, ticket)

    cut = {"on": True}

    def http(route: Route) -> None:
        if cut["on"]:
            route.abort("connectionrefused")
        else:
            route.continue_()

    def socket(ws: WebSocketRoute) -> None:
        if cut["on"]:
            ws.close()
        else:
            ws.connect_to_server()

    page.route(re.compile(r"/api/admin/support/(reply|note)$"), http)
    page.route_web_socket(re.compile(r"/ws/operator$"), socket)
    page.reload()  # the socket now goes through the route
    expect(page.locator("html")).to_have_attribute("data-live", "off")
    expect(_reply_box(page)).to_be_enabled()

    text = "Да, напишите новый адрес — передадим курьеру."
    _reply_box(page).fill(text)
    _reply_box(page).press("Enter")
    expect(_pending(page, text)).to_have_attribute("data-pending", "waiting")

    page.reload()
    expect(_pending(page, text)).to_have_attribute("data-pending", "waiting")
    expect(_pending(page, text)).to_have_count(1)
    assert _customer_count(v, text) == 0

    cut["on"] = False  # the socket's next reconnect gets through, and the outbox follows
    expect(page.locator("html")).to_have_attribute("data-live", "on", timeout=40_000)
    expect(_stored(page, text)).to_have_count(1)
    expect(conversation(page).locator(".msg.pending")).to_have_count(0)
    wait_in_page(page, lambda: _queued(page) == 0, "the outbox to empty")
    assert _customer_count(v, text) == 1
    expect(_composer_error(page)).to_have_text("")


def _kept_uploads(page: Page) -> int:
    """Entries in the dashboard's IndexedDB upload store (web/admin/upload-store.js)."""
    n: int = page.evaluate(
        """() => new Promise((resolve, reject) => {
            const req = indexedDB.open("trustdesk.admin", 1);
            req.onupgradeneeded = () =>
                req.result.createObjectStore("uploads", { keyPath: "cmid" });
            req.onerror = () => reject(req.error);
            req.onsuccess = () => {
              const tx = req.result.transaction("uploads", "readonly");
              const count = tx.objectStore("uploads").count();
              count.onsuccess = () => { resolve(count.result); req.result.close(); };
              count.onerror = () => reject(count.error);
            };
        })"""
    )
    return n


def test_file_waits_for_a_stopped_server_across_a_reload(
    server: ServerProcess, new_page: Callable[..., Page]
) -> None:
    """A file sent while the server is down is kept (IndexedDB), survives a reload, and
    reaches the customer once, with its caption, when the server is back."""
    v = VisitorClient(server.url)
    ticket = v.send("Пришлите, пожалуйста, фото бирки")["ticketId"]
    page = new_page(viewport={"width": 1280, "height": 800})
    login(page, server)
    open_ticket(page, ticket)

    server.stop()
    expect(page.locator("html")).to_have_attribute("data-live", "off")
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Прикрепить файл").click()
    chooser.value.set_files(
        [{"name": "бирка.png", "mimeType": "image/png", "buffer": png(120, 80, (20, 120, 200))}]
    )
    _reply_box(page).fill("Вот бирка")
    page.get_by_role("button", name="Отправить", exact=True).click()
    waiting = conversation(page).locator(".msg.pending.upload")
    expect(waiting).to_have_count(1)
    expect(waiting.get_by_role("alert")).to_be_visible()  # failed for now, to be re-sent
    wait_in_page(page, lambda: _kept_uploads(page) == 1, "the file to be kept")

    with pytest.raises(PlaywrightError):
        page.reload()
    server.start()
    page.goto(f"{server.url}/admin#/tickets/{ticket}")
    sent = conversation(page).locator(".msg.admin:not(.pending) .att-image")
    expect(sent).to_have_count(1)
    expect(conversation(page).locator(".msg.pending")).to_have_count(0)
    wait_in_page(page, lambda: _kept_uploads(page) == 0, "the store to empty")
    files = [m for m in v.messages()["messages"] if m.get("attachment")]
    assert [(m["attachment"]["name"], m["message"]) for m in files] == [("бирка.png", "Вот бирка")]
    page.reload()  # nothing is sent again
    expect(sent).to_have_count(1)
    assert len([m for m in v.messages()["messages"] if m.get("attachment")]) == 1
