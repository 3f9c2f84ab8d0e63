"""The owner's console in Chromium: the "Виджет" page, and a widget on a site that is not
allowed (a second origin: a real little web server on another port, serving a shop page
with the one script tag)."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import shot
from tests.browser.test_dashboard import login
from tests.support.server import ServerProcess

FRAME = "iframe[title='Чат поддержки']"
NOT_CONNECTED = "Чат не подключён на этом сайте"


@pytest.fixture(scope="module")
def other_site(server: ServerProcess) -> Iterator[str]:
    """Another shop's site, on its own origin, embedding the widget with the script tag."""
    html = (
        "<!doctype html><html lang='ru'><meta charset='utf-8'><title>Другой магазин</title>"
        "<body style='font-family:sans-serif;background:#f8fafc'><h1>Другой магазин</h1>"
        f"<script src='{server.url}/widget.js' async></script></body></html>"
    ).encode()

    class Shop(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(html)))
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Shop)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_a_site_not_allowed_is_told_and_allowed_in_one_click(
    server: ServerProcess, new_page: Callable[..., Page], other_site: str
) -> None:
    admin = new_page()
    login(admin, server)
    shop = new_page()
    url = site = other_site

    # The customer sees, in words, that the chat is not connected here (never a broken frame).
    shop.goto(url)
    shop.get_by_role("button", name="Открыть чат").click()
    expect(shop.get_by_role("alert")).to_contain_text(NOT_CONNECTED)
    expect(shop.locator(FRAME)).to_have_count(0)
    shot(shop, "widget-site-not-connected")

    # The admin, already in the dashboard, is told at once, and allows the site.
    notice = admin.get_by_role("status").filter(has_text=f"Виджет открыт на сайте {site}")
    expect(notice).to_contain_text("который не подключён")
    shot(admin, "dashboard-site-notice")
    notice.get_by_role("button", name="Разрешить").click()
    expect(notice).to_have_count(0)

    # The next open on that site is a working chat.
    shop.reload()
    shop.get_by_role("button", name="Открыть чат").click()
    chat = shop.frame_locator(FRAME)
    expect(chat.get_by_role("textbox", name="Сообщение")).to_be_visible()
    expect(shop.get_by_role("alert")).to_have_count(0)


def test_the_widget_page_edits_previews_and_applies(
    server: ServerProcess, new_page: Callable[..., Page], other_site: str
) -> None:
    admin = new_page()
    login(admin, server)
    admin.get_by_role("link", name="Виджет").click()
    expect(admin.get_by_role("heading", name="Виджет", exact=True)).to_be_visible()
    title = admin.get_by_label("Название в шапке чата")
    expect(title).to_be_editable()
    preview = admin.get_by_role("img", name="Так покупатель увидит чат")

    title.fill("Trust Store")
    admin.get_by_label("Цвет", exact=True).fill("#0f766e")
    admin.get_by_label("Кнопка чата").select_option("left")
    greeting = "Здравствуйте! Чем помочь с заказом? 🛒"
    admin.get_by_label("Приветствие").fill(greeting)
    expect(preview).to_contain_text("Trust Store")
    expect(preview).to_contain_text(greeting)

    # A bad site address is refused by name, at its field; nothing is saved.
    sites = admin.get_by_label("Разрешённые сайты")
    sites.fill("shop.example/catalog")
    admin.get_by_role("button", name="Сохранить").click()
    expect(sites).to_have_attribute("aria-invalid", "true")
    expect(admin.get_by_text(re.compile("^Адрес сайта: https://shop.example"))).to_be_visible()
    sites.fill(other_site)
    admin.get_by_role("button", name="Сохранить").click()
    expect(admin.get_by_role("status").filter(has_text="Сохранено")).to_be_visible()
    expect(sites).not_to_have_attribute("aria-invalid", "true")
    expect(admin.locator(".ws-snippet")).to_contain_text(f'<script src="{server.url}/widget.js"')
    shot(admin, "dashboard-widget-settings")

    # The next widget open uses it: title, colour, side and greeting, with no restart.
    shop = new_page()
    shop.goto(other_site + "/styled-shop")
    launcher = shop.get_by_role("button", name="Открыть чат")
    box = launcher.bounding_box()
    assert box is not None and box["x"] < 200, box  # on the left
    colour = launcher.evaluate("el => getComputedStyle(el).backgroundColor")
    assert colour == "rgb(15, 118, 110)", colour
    launcher.click()
    chat = shop.frame_locator(FRAME)
    expect(chat.get_by_text(greeting)).to_be_visible()
    expect(chat.get_by_text("Trust Store").first).to_be_visible()
    shot(shop, "widget-styled-from-settings")
