"""Missed chats in the dashboard (waiting.js, alerts.js), in real headless Chromium against a
real server with the local Bot API stand-in: the "Ждут ответа" view, longest wait first,
live; the opt-ins of Settings → Аккаунт with Telegram linking by /start CODE; the warning
when push cannot work on this device; the report's missed / answered-late figures."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import shot
from tests.browser.test_dashboard import login, open_ticket, row, watch_errors
from tests.support.clients import OperatorClient, VisitorClient
from tests.support.inspect_db import query
from tests.support.server import ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, ServerProcess
from tests.support.services import wait_until
from tests.support.telegram_api import TOKEN, BotApi

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def patient_expect() -> Iterator[None]:
    expect.set_options(timeout=15_000)  # a small, busy machine
    yield
    expect.set_options(timeout=5_000)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, bot_api: BotApi) -> Iterator[ServerProcess]:
    srv = ServerProcess(
        tmp_path_factory.mktemp("escalation-browser"),
        extra_env={
            "TRUSTDESK_TELEGRAM_BOT_TOKEN": TOKEN,
            "TRUSTDESK_TELEGRAM_API_URL": bot_api.url,
            "TRUSTDESK_TELEGRAM_POLL_SECONDS": "1",
            "TRUSTDESK_ESCALATE_INTERVAL_SECONDS": "0.5",
        },
    )
    srv.create_operator(ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, role="admin")
    srv.start()
    yield srv
    srv.stop()


def _backdate(server: ServerProcess, number: str, minutes: int) -> None:
    """As if the customer had written `minutes` ago (the clock cannot be moved)."""
    when = datetime.now(UTC) - timedelta(minutes=minutes, seconds=10)
    stamp = when.replace(tzinfo=None).isoformat(" ", "microseconds")
    query(server, "UPDATE tickets SET waiting_since = $1 WHERE number = $2", stamp, number)


def test_waiting_view_longest_first_and_live(
    server: ServerProcess, new_page: Callable[..., Page]
) -> None:
    old = VisitorClient(server.url)
    old_number = old.send("Заказ TS-1042 не пришёл, что делать?")["ticketId"]
    newer = VisitorClient(server.url)
    newer_number = newer.send("Можно поменять размер?")["ticketId"]
    answered = VisitorClient(server.url).send("Спасибо!")["ticketId"]
    _backdate(server, old_number, 7)
    _backdate(server, newer_number, 2)
    page = new_page(viewport={"width": 1400, "height": 860})
    errors = watch_errors(page)
    login(page, server)
    page.get_by_role("button", name="Ждут ответа").click()
    rows = page.locator(".ticket-row")
    expect(row(page, old_number).locator(".waiting-chip")).to_have_text("⏱ ждёт 7 мин")
    expect(row(page, newer_number).locator(".waiting-chip")).to_have_text("⏱ ждёт 2 мин")
    ids = [r.get_attribute("data-ticket-id") for r in rows.all()]
    assert ids.index(old_number) < ids.index(newer_number) < ids.index(answered)
    # Past N (5 minutes by default) the chip is red in every list.
    expect(row(page, old_number).locator(".waiting-chip")).to_have_class(re.compile("late"))
    # Live: a new customer joins the end of the view; an answer takes a ticket out of it.
    late_comer = VisitorClient(server.url).send("Есть ли доставка в Казань?")["ticketId"]
    expect(row(page, late_comer)).to_be_visible()
    expect(rows.last).to_have_attribute("data-ticket-id", late_comer)
    open_ticket(page, answered)
    page.get_by_role("textbox", name="Ответ").fill("Пожалуйста! Хорошего дня.")
    page.get_by_role("textbox", name="Ответ").press("Enter")
    expect(row(page, answered)).to_have_count(0)
    open_ticket(page, old_number)
    shot(page, "waiting-view")
    page.get_by_role("button", name="Открытые").click()
    expect(row(page, old_number).locator(".waiting-chip.late")).to_be_visible()
    expect(row(page, newer_number).locator(".waiting-chip")).to_have_count(0)  # not yet due
    # English.
    page.get_by_role("button", name="English").click()
    page.get_by_role("button", name="Waiting").click()
    expect(row(page, old_number).locator(".waiting-chip")).to_have_text("⏱ waiting 7 min")
    assert errors == []


def test_opt_ins_telegram_link_and_push_warning(
    server: ServerProcess, bot_api: BotApi, new_page: Callable[..., Page]
) -> None:
    # Notifications allowed, but no service worker on this device: push cannot work.
    page = new_page(viewport={"width": 1400, "height": 1000}, permissions=["notifications"])
    errors = watch_errors(page)
    login(page, server)
    warn = page.locator(".push-warn")
    expect(warn).to_be_visible()
    expect(warn).to_contain_text("service worker не установлен")
    warn.get_by_role("button", name="Проверить push").click()
    expect(warn.locator(".form-msg")).to_have_text(
        "Push не пришёл: на этом устройстве нет service worker."
    )
    shot(page, "push-warning", clip={"x": 0, "y": 0, "width": 700, "height": 420})

    page.get_by_role("link", name="Настройки").click()
    card = page.locator("#alerts-card")
    expect(card.get_by_role("heading", name="Уведомления о пропущенных")).to_be_visible()
    expect(card).to_contain_text("push через 5 мин, email через 10 мин, Telegram через 15 мин")
    expect(card.get_by_label("Звук и заголовок вкладки")).to_be_checked()
    expect(card.get_by_label("Push")).to_be_checked()
    email = card.get_by_label(re.compile("^Email на"))
    expect(email).to_be_disabled()
    expect(card.locator(".alert-row[data-alert='email'] .alert-reason")).to_have_text(
        "почта на сервере не настроена"
    )
    telegram = card.locator("#alert-telegram")
    expect(telegram).to_be_disabled()
    expect(card.locator(".push-health")).to_have_text("нет service worker")
    # The admin's N is in the routing card.
    expect(page.locator("#rs-escalate_after_minutes")).to_have_value("5")

    card.get_by_role("button", name="Подключить Telegram").click()
    link = card.get_by_role("link", name="Открыть @trust_store_bot")
    expect(link).to_have_attribute("href", re.compile(r"^https://t\.me/trust_store_bot\?start="))
    command = card.locator(".telegram-code").inner_text()
    assert re.fullmatch(r"/start [A-Za-z0-9_-]{24}", command), command
    assert link.get_attribute("href", timeout=5000).endswith(command.split()[1])
    shot(page, "alerts-telegram-link", full_page=False)
    before = len(bot_api.sent)
    bot_api.customer_writes(7_700_001, ADMIN_NAME, text=command)
    assert bot_api.wait_sent(before + 1)[before]["text"].startswith("Готово")
    expect(card.get_by_text("Telegram подключён")).to_be_visible()
    expect(telegram).to_be_enabled()
    expect(telegram).to_be_checked()
    # Sound off: stored for this operator.
    card.get_by_label("Звук и заголовок вкладки").uncheck()
    expect(page.locator(".toast")).to_contain_text("Сохранено")
    card.scroll_into_view_if_needed()
    shot(page, "alerts-settings")
    page.reload()
    sound = page.locator("#alerts-card").get_by_label("Звук и заголовок вкладки")
    expect(sound).not_to_be_checked()
    sound.check()
    expect(page.locator(".toast")).to_contain_text("Сохранено")
    # The /start never became a customer's ticket.
    tickets = page.request.get(server.url + "/api/admin/support/tickets?status=all").json()
    assert not [t for t in tickets["tickets"] if t["channel"] == "telegram"]
    assert errors == []


def test_report_shows_missed_and_answered_late(
    server: ServerProcess, new_page: Callable[..., Page]
) -> None:
    # The first test's 7-minute wait is missed (unanswered); this one is answered late.
    number = VisitorClient(server.url).send("Ответьте, пожалуйста")["ticketId"]
    _backdate(server, number, 6)
    wait_until(
        lambda: query(server, "SELECT count(*) FROM ticket_waits") == [(2,)], 20, "two missed"
    )
    op = OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    op.reply(number, "Простите за ожидание!")
    page = new_page(viewport={"width": 1400, "height": 900})
    login(page, server)
    page.get_by_role("link", name="Отчёт").click()
    missed = page.locator("[data-kpi='missed']")
    expect(missed.locator(".kpi-label")).to_have_text("Пропущенные")
    expect(missed.locator(".kpi-value")).to_have_text("2")
    expect(missed.locator(".kpi-sub")).to_have_text("ждали ответа 5 мин и дольше")
    late = page.locator("[data-kpi='answered-late']")
    expect(late.locator(".kpi-label")).to_have_text("Отвечены поздно")
    expect(late.locator(".kpi-value")).to_have_text("1")
    shot(page, "report-missed", clip={"x": 0, "y": 0, "width": 1400, "height": 360})
