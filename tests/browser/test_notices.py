"""Notices that agree with the operator (issue 21 item 5), in real Chromium: an agent sets
her grammatical gender in her profile, the customer reads "подключилась"; the dashboard in
English words the stored notices in English; the list preview stays the customer's question."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import shot
from tests.browser.test_dashboard import conversation, login, open_ticket, row, watch_errors
from tests.support.clients import OperatorClient, VisitorClient
from tests.support.server import ADMIN_EMAIL, ADMIN_PASSWORD, ServerProcess

pytestmark = pytest.mark.browser

EMAIL = "maria@trust.store"
PASSWORD = "maria agent password"


def test_gender_from_the_profile_and_notices_in_the_viewers_language(
    server: ServerProcess, new_page: Callable[..., Page]
) -> None:
    admin = OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    r = admin.post(
        "/api/admin/operators",
        {"email": EMAIL, "name": "Мария", "password": PASSWORD, "role": "agent"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["operator"]["gender"] is None
    customer = VisitorClient(server.url)
    ticket = customer.send("Где мой заказ 5531?")["ticketId"]

    page = new_page(viewport={"width": 1360, "height": 900})
    errors = watch_errors(page)
    login(page, server, EMAIL, PASSWORD)
    page.get_by_role("link", name="Настройки").click()
    gender = page.get_by_label("Род в уведомлениях")
    expect(gender).to_have_value("")
    gender.select_option("female")
    expect(page.get_by_role("status").filter(has_text="Сохранено")).to_be_visible()
    shot(page, "account-gender")

    page.get_by_role("link", name="Тикеты").click()
    open_ticket(page, ticket)
    joined = "👨‍💼 Оператор Мария подключилась к диалогу"
    expect(conversation(page).get_by_text(joined)).to_be_visible()
    # The customer reads it too, in the operator's gender.
    assert joined in customer.texts()
    # The preview is the customer's question, as text one can select, not the notice.
    expect(row(page, ticket).get_by_text("Где мой заказ 5531?")).to_be_visible()

    page.get_by_role("button", name="English").click()
    expect(conversation(page).get_by_text("👨‍💼 Мария joined the conversation")).to_be_visible()
    expect(conversation(page).get_by_text(joined)).to_have_count(0)
    # The ticket's header menus follow the language too (they are kept across re-renders).
    header = page.locator(".conv-header")
    expect(header.get_by_role("button", name="Merge with…")).to_be_visible()
    expect(header).not_to_contain_text("Объединить")
    shot(page, "dashboard-notice-en")
    assert errors == []
