"""Teams, routing rules, priority and snooze in the dashboard (routing.js), in real headless
Chromium against a real server: the widget on a shop page with data-team routes its ticket;
a customer's words route another; the first reply assigns; "Отложить" hides a ticket."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import shot
from tests.browser.test_dashboard import conversation, login, open_ticket, row, watch_errors
from tests.browser.test_widget import open_chat, send, ticket_of
from tests.support.clients import VisitorClient
from tests.support.server import ADMIN_NAME, ServerProcess

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def patient_expect() -> Iterator[None]:
    expect.set_options(timeout=15_000)  # a small, busy machine
    yield
    expect.set_options(timeout=5_000)


def _add_team(page: Page, name: str) -> None:
    card = page.locator(".routing-settings-card")
    card.get_by_label("Новый отдел").fill(name)
    card.get_by_role("button", name="Добавить отдел").click()
    expect(card.get_by_label(f"Название отдела {name}")).to_have_value(name)


def _add_rule(page: Page, kind: str, pattern: str, team: str) -> None:
    card = page.locator(".routing-settings-card")
    n = card.locator(".rule-item").count()
    card.get_by_label("Условие").select_option(label=kind)
    card.get_by_label("Значение").fill(pattern)
    card.locator("#rule-team").select_option(label=team)
    card.get_by_role("button", name="Добавить правило").click()
    expect(card.locator(".rule-item")).to_have_count(n + 1)


def test_teams_rules_first_reply_priority_and_snooze(
    server: ServerProcess, new_page: Callable[..., Page]
) -> None:
    page = new_page(viewport={"width": 1400, "height": 900})
    errors = watch_errors(page)
    login(page, server)

    # The admin sets up two teams, joins one, and adds a rule for each.
    page.get_by_role("link", name="Настройки").click()
    card = page.locator(".routing-settings-card")
    expect(
        card.get_by_label("Первый ответ оператора назначает ему тикет без ответственного")
    ).to_be_checked()
    _add_team(page, "Оплата")
    _add_team(page, "Возвраты")
    members = card.get_by_role("group", name="Участники отдела Оплата")
    members.get_by_label(ADMIN_NAME).check()
    expect(page.locator(".toast")).to_contain_text("Сохранено")  # stored
    expect(
        card.get_by_role("group", name="Участники отдела Оплата").get_by_label(ADMIN_NAME)
    ).to_be_checked()
    _add_rule(page, "data-team виджета", "payments", "Оплата")
    _add_rule(page, "Слова в сообщении", "возврат, вернуть деньги", "Возвраты")
    expect(card.locator(".rule-item .rule-pattern")).to_have_text(
        ["payments", "возврат, вернуть деньги"]
    )
    # Reordering: the second rule up, then back.
    card.get_by_role("button", name="Выше").nth(1).click()
    expect(card.locator(".rule-item .rule-pattern")).to_have_text(
        ["возврат, вернуть деньги", "payments"]
    )
    card.get_by_role("button", name="Ниже").first.click()
    expect(card.locator(".rule-item .rule-pattern")).to_have_text(
        ["payments", "возврат, вернуть деньги"]
    )
    card.scroll_into_view_if_needed()
    shot(card, "dashboard-settings-routing")  # type: ignore[arg-type]

    # A shop page embeds the widget with data-team="payments"; its customer writes.
    shop = f"{server.url}/payments-shop"
    html = (
        "<!doctype html><html lang='ru'><meta charset='utf-8'><title>Оплата</title>"
        f"<h1>Оплата заказа</h1><script src='{server.url}/widget.js' data-team='payments' async>"
        "</script>"
    )
    customer = new_page()
    customer.route(shop, lambda route: route.fulfill(body=html, content_type="text/html"))
    chat = open_chat(customer, shop)
    send(chat, "Не проходит оплата картой")
    paid = ticket_of(customer)
    # Another customer's words route theirs; nobody is in that team: it waits unassigned.
    refund = VisitorClient(server.url).send("Хочу вернуть деньги за заказ 1042")["ticketId"]

    page.get_by_role("link", name="Тикеты").click()
    # Артём is online and in "Оплата": the round-robin gave him the payment ticket.
    expect(row(page, paid).locator(".team-chip")).to_have_text("👥 Оплата")
    expect(row(page, paid).locator(".row-assignee")).to_have_text(f"👤 {ADMIN_NAME}")
    expect(row(page, refund).locator(".team-chip")).to_have_text("👥 Возвраты")
    expect(row(page, refund).locator(".row-assignee")).to_have_text("не назначен")
    # The team filter.
    page.get_by_role("combobox", name="Отдел").select_option(label="👥 Возвраты")
    expect(row(page, refund)).to_be_visible()
    expect(row(page, paid)).to_be_hidden()
    page.get_by_role("combobox", name="Отдел").select_option(label="Все отделы")
    expect(row(page, paid)).to_be_visible()

    # The first reply assigns the unassigned ticket: the assignment menu shows it at once.
    open_ticket(page, refund)
    assign = page.get_by_label("Назначить оператора")
    expect(assign.locator("option:checked")).to_have_text("— не назначен —")
    reply = page.get_by_role("textbox", name="Ответ")
    reply.fill("Здравствуйте! Сейчас оформим возврат.")
    reply.press("Enter")
    expect(assign.locator("option:checked")).to_have_text(re.compile(f"^{ADMIN_NAME} "))
    expect(row(page, refund).locator(".row-assignee")).to_have_text(f"👤 {ADMIN_NAME}")
    expect(conversation(page)).to_contain_text("Отдел по правилу маршрутизации: Возвраты")

    # Priority: a visible marker in the list.
    info = page.locator(".routing-card")
    info.get_by_label("Приоритет").select_option(label="🔥 Срочный")
    expect(row(page, refund).locator(".prio-urgent")).to_have_text("🔥 Срочный")
    expect(conversation(page)).to_contain_text("Артём изменил приоритет: срочный")
    # The team, changed by hand.
    info.get_by_label("Отдел").select_option(label="Оплата")
    expect(row(page, refund).locator(".team-chip")).to_have_text("👥 Оплата")
    expect(conversation(page)).to_contain_text("Артём перевёл тикет в отдел Оплата")
    shot(page, "dashboard-routing-ticket")

    # "Отложить": presets; tomorrow at 9:00 hides it from the open list.
    info.get_by_role("button", name="⏸ Отложить").click()
    presets = info.get_by_role("group", name="Отложить до")
    expect(presets.get_by_role("button", name=re.compile("^Через час"))).to_be_focused()
    expect(presets.get_by_role("button")).to_have_count(5)  # 4 presets and "set"
    shot(page.locator(".info-pane"), "dashboard-snooze-presets")  # type: ignore[arg-type]
    presets.get_by_role("button", name=re.compile("^Завтра в 9:00")).click()
    expect(page.locator(".toast")).to_contain_text("Тикет отложен до")
    expect(info.locator(".snooze-status")).to_contain_text("Отложен до")
    expect(row(page, refund)).to_be_hidden()  # out of "Открытые"
    page.locator(".filter[data-filter='snoozed']").click()
    expect(row(page, refund)).to_be_visible()
    expect(row(page, refund).locator(".snoozed-chip")).to_contain_text("Отложен до")
    expect(row(page, paid)).to_be_hidden()
    shot(page, "dashboard-snoozed")
    # Back to work: out of "Отложенные", in "Открытые" again.
    info.get_by_role("button", name="▶ Вернуть в работу").click()
    expect(row(page, refund)).to_be_hidden()
    page.locator(".filter[data-filter='open']").click()
    expect(row(page, refund)).to_be_visible()
    expect(conversation(page)).to_contain_text("Тикет больше не отложен")

    # In English, the stored notices are worded in English.
    page.get_by_role("button", name="English").click()
    expect(conversation(page)).to_contain_text("Team chosen by a routing rule: Возвраты")
    expect(conversation(page)).to_contain_text("set the priority to urgent")
    page.get_by_role("button", name=re.compile("^(Русский|RU)")).click()
    assert errors == []
