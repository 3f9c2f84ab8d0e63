"""Labels and merging in the dashboard (labels.js), in real headless Chromium against a
real server; the customers write over the real visitor API."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import shot
from tests.browser.test_dashboard import conversation, login, open_ticket, row, watch_errors
from tests.support.clients import VisitorClient
from tests.support.server import ServerProcess

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def patient_expect() -> Iterator[None]:
    expect.set_options(timeout=15_000)  # a small, busy machine
    yield
    expect.set_options(timeout=5_000)


def _create_label(page: Page, name: str, color: str) -> None:
    card = page.locator(".labels-card")
    card.locator("#label-new-name").fill(name)
    card.locator("#label-new-color").fill(color)
    card.get_by_role("button", name="Добавить").click()
    expect(card.locator(".label-row .label-chip", has_text=name)).to_be_visible()


def test_labels_filter_and_merge(server: ServerProcess, new_page: Callable[..., Page]) -> None:
    alice = VisitorClient(server.url)
    first = alice.send("Где мой заказ 1042? Оплатила три дня назад.")["ticketId"]
    second = alice.send("Курьер так и не позвонил", new_ticket=True)["ticketId"]
    other = VisitorClient(server.url).send("Как вернуть товар?")["ticketId"]

    page = new_page(viewport={"width": 1360, "height": 860})
    errors = watch_errors(page)
    login(page, server)

    # An admin creates labels in the settings.
    page.get_by_role("link", name="Настройки").click()
    _create_label(page, "Доставка", "#1d4ed8")
    _create_label(page, "Возврат", "#fde68a")
    _create_label(page, "Оплата", "#17a34a")
    chip = page.locator(".labels-card .label-row .label-chip", has_text="Возврат")
    expect(chip).to_have_css("color", "rgb(0, 0, 0)")  # black on the light yellow
    expect(page.locator(".labels-card .label-chip", has_text="Доставка")).to_have_css(
        "color", "rgb(255, 255, 255)"
    )
    page.locator(".labels-card").scroll_into_view_if_needed()
    shot(page.locator(".labels-card"), "dashboard-settings-labels")  # type: ignore[arg-type]

    # Put one on a ticket with the keyboard: the menu button, arrows, Enter, Escape.
    page.get_by_role("link", name="Тикеты").click()
    open_ticket(page, second)
    add = page.get_by_role("button", name="🏷 Метка")
    add.focus()
    page.keyboard.press("Enter")
    menu = page.get_by_role("menu", name="Метки тикета")
    expect(menu).to_be_visible()
    # By name: Возврат, Доставка, Оплата; the first has the focus.
    expect(menu.get_by_role("menuitemcheckbox", name="Возврат")).to_be_focused()
    page.keyboard.press("ArrowDown")
    delivery = menu.get_by_role("menuitemcheckbox", name="Доставка")
    expect(delivery).to_be_focused()
    expect(delivery).to_have_attribute("aria-checked", "false")
    page.keyboard.press("Enter")
    expect(delivery).to_have_attribute("aria-checked", "true")
    expect(menu.get_by_role("menuitemcheckbox", name="Доставка")).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(menu.get_by_role("menuitemcheckbox", name="Оплата")).to_be_focused()
    page.keyboard.press(" ")
    expect(menu.get_by_role("menuitemcheckbox", name="Оплата")).to_have_attribute(
        "aria-checked", "true"
    )
    page.keyboard.press("Escape")
    expect(menu).to_be_hidden()
    expect(add).to_be_focused()
    header = page.locator(".conv-labels")
    expect(header.locator("> .label-chip")).to_have_text(["Доставка×", "Оплата×"])
    expect(row(page, second).locator(".label-chip")).to_have_text(["Доставка", "Оплата"])
    # The chip's own button takes a label off.
    header.get_by_role("button", name="Снять метку «Оплата»").click()
    expect(row(page, second).locator(".label-chip")).to_have_text(["Доставка"])
    shot(page, "dashboard-labels")

    # Filter the list by a label.
    page.get_by_role("combobox", name="Фильтр по метке").select_option(label="🏷 Доставка")
    expect(row(page, second)).to_be_visible()
    expect(row(page, other)).to_be_hidden()
    expect(row(page, first)).to_be_hidden()
    page.get_by_role("combobox", name="Фильтр по метке").select_option(label="Все метки")
    expect(row(page, other)).to_be_visible()

    # Merge the customer's other ticket into this one.
    page.get_by_role("button", name="Объединить с…").click()
    merge_menu = page.get_by_role("menu", name="Другие тикеты покупателя")
    target = merge_menu.get_by_role("menuitem", name=re.compile(re.escape(first)))
    expect(target).to_be_visible()
    expect(merge_menu.get_by_role("menuitem")).to_have_count(1)  # never another customer's
    target.click()
    dialog = page.get_by_role("dialog", name="Объединить тикеты?")
    expect(dialog).to_contain_text(first)
    dialog.get_by_role("button", name="Объединить").click()
    log = conversation(page)
    expect(log).to_contain_text("Где мой заказ 1042?")
    expect(log).to_contain_text(f"Тикет {first} объединён с {second}")
    # In id order: the older ticket's question comes first.
    texts = log.locator(".bubble").all_inner_texts()
    at = {k: next(i for i, x in enumerate(texts) if k in x) for k in ("1042", "Курьер")}
    assert at["1042"] < at["Курьер"], texts
    expect(page.locator(".toast")).to_contain_text("объединён")
    shot(page, "dashboard-merge")

    # On a phone the labels get a row of their own under the actions.
    phone = new_page(viewport={"width": 390, "height": 844})
    login(phone, server)
    open_ticket(phone, second)
    expect(phone.locator(".conv-labels > .label-chip")).to_have_text(["Доставка×"])
    expect(phone.get_by_role("button", name="Объединить с…")).to_be_visible()
    shot(phone, "dashboard-labels-mobile")

    # The report counts tickets per label.
    page.get_by_role("link", name="Отчёт").click()
    bars = page.locator(".labels-report .label-bar")
    expect(bars).to_have_count(1)
    expect(bars.first.locator(".label-bar-n")).to_have_text("1")
    expect(bars.first.locator(".label-chip")).to_have_text("Доставка")
    assert errors == []
