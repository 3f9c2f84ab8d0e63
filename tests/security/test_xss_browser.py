"""Stored XSS: payloads in every user-controlled text, rendered by the real widget and the
real dashboard in headless Chromium, never execute.

The payloads go into messages (both directions), private notes, system messages, the
customer's name, an operator's display name, a file name and a canned response. Every
frame of every page gets an init script that replaces alert/confirm/prompt with a
recorder and records CSP violations (an injected inline handler blocked by the CSP still
means text was parsed as HTML somewhere). The test fails on any call or violation, and
checks that each payload is shown as the literal text it is.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.security.conftest import start_server
from tests.support.clients import OperatorClient, VisitorClient
from tests.support.payloads import XSS, png
from tests.support.server import ADMIN_EMAIL, ADMIN_PASSWORD, ServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FRAME = "iframe[title='Чат поддержки']"
WAIT = 15_000

HOOK = """
(() => {
  const seen = (window.__xss = []);
  for (const name of ['alert', 'confirm', 'prompt', 'print']) {
    window[name] = (...args) => { seen.push([name, String(args[0])]); };
  }
  document.addEventListener('securitypolicyviolation', (e) => {
    seen.push(['csp', e.violatedDirective + ' ' + (e.sample || e.blockedURI)]);
  });
})();
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path_factory, "xss")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        b.close()


def new_page(browser: Browser) -> Page:
    ctx = browser.new_context(locale="ru-RU", viewport={"width": 1280, "height": 900})
    ctx.add_init_script(HOOK)
    page = ctx.new_page()
    page.set_default_timeout(WAIT)
    return page


def fired(page: Page) -> list[Any]:
    out: list[Any] = []
    for frame in page.frames:
        with contextlib.suppress(Exception):  # a frame that went away has nothing to say
            out += frame.evaluate("() => window.__xss || []")
    return out


def test_payloads_render_as_text_in_widget_and_dashboard(
    server: ServerProcess, browser: Browser
) -> None:
    admin = OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    evil_name = XSS[2][:90]
    r = admin.post(
        "/api/admin/operators",
        json={
            "email": "xss@trust.store",
            "name": evil_name,
            "password": "xss-password-1",
            "role": "admin",
        },
    )
    assert r.status_code == 201, r.text
    evil_op = OperatorClient(server.url, "xss@trust.store", "xss-password-1")
    r = admin.post("/api/admin/canned", json={"name": "xss", "text": XSS[0]})
    assert r.status_code == 201, r.text

    # ---- the widget: the customer writes payloads; operators answer with payloads.
    page = new_page(browser)
    page.goto(server.url + "/")
    page.get_by_role("button", name="Открыть чат").click()
    chat = page.frame_locator(FRAME)
    box = chat.get_by_role("textbox", name="Сообщение")
    for text in XSS[:5]:
        box.fill(text)
        box.press("Enter")
        expect(chat.locator(".row--customer[data-id]", has_text=text)).to_have_count(1)
    frame = next(f for f in page.frames if "/widget/" in f.url)
    ticket = frame.wait_for_function(
        "() => localStorage.getItem('trustdesk.ticketId')", timeout=WAIT
    ).json_value()
    token = frame.evaluate(
        "() => Object.keys(localStorage).map(k => localStorage.getItem(k))"
        ".find(v => v && v.length > 40 && !v.startsWith('TKT-') && !v.startsWith('{'))"
    )
    visitor = VisitorClient.__new__(VisitorClient)
    visitor.http = httpx.Client(
        base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {token}"}
    )
    visitor.ticket_id = ticket
    r = visitor.http.post(
        "/api/support/contact", json={"email": "x@example.com", "name": XSS[1][:100]}
    )
    assert r.status_code == 200, r.text
    r = visitor.http.post(
        "/api/support/upload",
        params={"ticketId": ticket, "name": XSS[0] + ".png"},
        content=png(),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 200, r.text
    evil_op.open(ticket)
    for text in XSS[5:]:
        evil_op.reply(ticket, text)
    evil_op.post(
        "/api/admin/support/note", json={"ticketId": ticket, "message": "заметка " + XSS[3]}
    )
    evil_op.post("/api/admin/support/system-message", json={"ticketId": ticket, "message": XSS[4]})
    for text in XSS[5:]:
        expect(chat.locator(".row--agent[data-id]", has_text=text)).to_have_count(1)
    # The operator's name (a payload itself) is shown as text, too.
    expect(chat.get_by_text(evil_name, exact=False).first).to_be_visible()
    assert chat.locator("img[src='x'], svg[onload], iframe[srcdoc], details[ontoggle]").count() == 0
    # The private note never reaches the widget (as text or otherwise).
    assert chat.get_by_text("заметка").count() == 0

    # ---- the dashboard: the list, the conversation, notes, the file, canned responses.
    dash = new_page(browser)
    dash.goto(server.url + "/admin")
    dash.get_by_label("Email").fill(ADMIN_EMAIL)
    dash.get_by_label("Пароль").fill(ADMIN_PASSWORD)
    dash.get_by_role("button", name="Войти").click()
    expect(dash.locator("html")).to_have_attribute("data-live", "on")
    row = dash.locator(f".ticket-row[data-ticket-id='{ticket}']")
    expect(row).to_be_visible()
    row.click()
    log = dash.get_by_role("log")
    for text in XSS:
        expect(log.get_by_text(text, exact=False).first).to_be_visible()
    reply = dash.get_by_role("textbox", name="Ответ")
    reply.fill("/xss")  # the canned response popup shows the payload as text
    dash.keyboard.press("Escape")
    dash.locator(".nav-item[data-view='settings']").click()
    dash.wait_for_load_state("networkidle")
    assert dash.locator("img[src='x'], svg[onload], iframe[srcdoc], details[ontoggle]").count() == 0

    assert fired(page) == [], "a payload ran in the widget"
    assert fired(dash) == [], "a payload ran in the dashboard"
    page.context.close()
    dash.context.close()
