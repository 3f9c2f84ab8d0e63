"""Settings → "Журнал действий" (audit.js), in real headless Chromium against a real server:
an admin reads who signed in and what changed, filters by action and by operator, pages
back with "Показать ещё", and reads it in English; an agent has no such card."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import shot
from tests.browser.test_dashboard import login, watch_errors
from tests.support.clients import OperatorClient
from tests.support.server import ADMIN_EMAIL, ADMIN_PASSWORD, ServerProcess

pytestmark = pytest.mark.browser

AGENT_EMAIL = "olga@trust.store"
AGENT_PASSWORD = "olga agent password"
WRONG = "not-the-password-7731"


@pytest.fixture(autouse=True)
def patient_expect() -> Iterator[None]:
    expect.set_options(timeout=15_000)  # a small, busy machine
    yield
    expect.set_options(timeout=5_000)


def test_audit_log_card(server: ServerProcess, new_page: Callable[..., Page]) -> None:
    admin = OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    r = admin.post(
        "/api/admin/operators",
        {"email": AGENT_EMAIL, "name": "Ольга", "password": AGENT_PASSWORD, "role": "agent"},
    )
    assert r.status_code == 201, r.text
    agent_id = r.json()["operator"]["id"]
    r = admin.post("/api/admin/labels", {"name": "Возврат", "color": "#fde68a"})
    assert r.status_code == 201, r.text
    r = admin.http.patch(f"/api/admin/labels/{r.json()['label']['id']}", json={"color": "#1d4ed8"})
    assert r.status_code == 200, r.text
    # More than one page (50) of failed logins, the password nowhere on screen.
    with httpx.Client(base_url=server.url, timeout=30) as c:
        for _ in range(52):
            bad = c.post("/api/admin/login", json={"email": ADMIN_EMAIL, "password": WRONG})
            assert bad.status_code == 401
    OperatorClient(server.url, AGENT_EMAIL, AGENT_PASSWORD)  # the agent signs in

    page = new_page(viewport={"width": 1360, "height": 900})
    errors = watch_errors(page)
    login(page, server)
    page.get_by_role("link", name="Настройки").click()
    card = page.locator("section.audit-card")
    expect(card.get_by_role("heading", name="📜 Журнал действий")).to_be_visible()
    rows = card.locator("tbody tr")
    expect(rows).to_have_count(50)  # one page
    # Newest first: the admin's own login of a moment ago, then the agent's.
    expect(rows.nth(0)).to_contain_text("Вход")
    expect(rows.nth(0)).to_contain_text("Артём")
    expect(rows.nth(1)).to_contain_text("Ольга")
    expect(rows.nth(1)).to_contain_text(AGENT_EMAIL)
    expect(rows.nth(2)).to_contain_text("Неудачный вход")
    expect(rows.nth(2)).to_contain_text("Не вошёл")
    expect(rows.nth(2)).to_contain_text("127.0.0.1")
    more = card.get_by_role("button", name="Показать ещё")
    expect(more).to_be_visible()
    more.click()
    expect(rows).not_to_have_count(50)
    count = rows.count()
    assert count > 50
    expect(more).to_be_hidden()  # the end of the log
    expect(card).not_to_contain_text(WRONG)
    # The oldest: the CLI created the admin.
    expect(rows.last).to_contain_text("Оператор добавлен")
    expect(rows.last).to_contain_text("Командная строка")

    # Filter by action: label changes, with old → new.
    card.get_by_label("Действие").select_option(label="Метки")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Метка изменена")
    expect(rows.nth(0)).to_contain_text("color: «#fde68a» → «#1d4ed8»")
    expect(rows.nth(1)).to_contain_text("Метка создана")
    # And by operator: only what Ольга did (her login), whatever the action.
    card.get_by_label("Действие").select_option(label="Все действия")
    card.get_by_label("Кто").select_option(label="Ольга")
    expect(rows).to_have_count(1)
    expect(rows.nth(0)).to_contain_text("Вход")
    card.get_by_label("Кто").select_option(label="Все")
    card.get_by_label("Действие").select_option(label="Входы")
    expect(rows).to_have_count(50)
    card.scroll_into_view_if_needed()
    shot(card, "dashboard-settings-audit")  # type: ignore[arg-type]
    assert errors == []

    # In English.
    page.goto(server.url + "/admin?lang=en#/settings")
    card = page.locator("section.audit-card")
    expect(card.get_by_role("heading", name="📜 Audit log")).to_be_visible()
    expect(card.locator("tbody tr").first).to_contain_text("Signed in")
    expect(card.get_by_role("columnheader", name="Address")).to_be_visible()
    card.get_by_label("Action").select_option(label="Sign-ins")
    expect(card.locator("tbody tr").nth(2)).to_contain_text("Failed sign-in")
    shot(card, "dashboard-settings-audit-en")  # type: ignore[arg-type]

    # An agent's settings have no audit log (and the API refuses them).
    agent_page = new_page(viewport={"width": 1360, "height": 900})
    login(agent_page, server, AGENT_EMAIL, AGENT_PASSWORD)
    agent_page.get_by_role("link", name=re.compile("^(Настройки|Settings)$")).click()
    expect(
        agent_page.get_by_role("heading", name=re.compile("^(Настройки|Settings)$"))
    ).to_be_visible()
    expect(agent_page.locator("section.audit-card")).to_have_count(0)
    assert agent_id
    assert errors == []
