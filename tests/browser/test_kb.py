"""The help center in real headless Chromium against a real server: the public pages, the
widget's suggestions while a first question is typed (and the article opened inside it),
the dashboard's "База знаний". `alert` is hooked in every frame: a stored-XSS payload in an
article must not run anywhere."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from io import BytesIO
from typing import Any

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from tests.browser.conftest import shot
from tests.browser.test_dashboard import conversation, login, open_ticket, watch_errors
from tests.browser.test_widget import open_chat, textbox
from tests.support.clients import OperatorClient
from tests.support.server import ADMIN_EMAIL, ADMIN_PASSWORD, ServerProcess

pytestmark = pytest.mark.browser

XSS = "<img src=x onerror=alert(1)><script>alert(2)</script>[x](javascript:alert(3))"
HOOK = """
window.__alerts = [];
for (const name of ["alert", "confirm", "prompt"]) {
  window[name] = (m) => { window.__alerts.push(name + ":" + String(m)); };
}
"""


@pytest.fixture(autouse=True)
def patient_expect() -> Iterator[None]:
    expect.set_options(timeout=15_000)  # a small, busy machine
    yield
    expect.set_options(timeout=5_000)


@pytest.fixture(scope="module")
def admin(server: ServerProcess) -> OperatorClient:
    return OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)


def _article(op: OperatorClient, title: str, body: str, **kw: Any) -> dict[str, Any]:
    r = op.post(
        "/api/admin/kb/articles",
        {"title": title, "body": body, "published": True, "locale": "ru", **kw},
    )
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()["article"]
    return out


def _png() -> bytes:
    out = BytesIO()
    Image.new("RGB", (40, 24), (47, 107, 255)).save(out, "PNG")
    return out.getvalue()


def _hooked(new_page: Callable[..., Page], **kw: Any) -> tuple[Page, list[str]]:
    page = new_page(**kw)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.context.add_init_script(HOOK)
    return page, dialogs


def _alerts(page: Page) -> list[str]:
    """What was alerted in the page and in every frame of it."""
    out: list[str] = []
    for frame in page.frames:
        got = frame.evaluate("window.__alerts || []")
        out.extend(got)
    return out


PAY_BODY = (
    "Принимаем **Visa, Mastercard и Мир**. Оплата проходит на защищённой странице банка.\n\n"
    "1. Выберите «Картой онлайн».\n2. Введите данные карты.\n\n"
    "[Условия оплаты](https://trust.store/pay)\n\n" + XSS
)


def test_help_center_pages(
    server: ServerProcess, admin: OperatorClient, new_page: Callable[..., Page]
) -> None:
    pay = _article(admin, "Как оплатить заказ картой", PAY_BODY, category="Оплата")
    _article(
        admin, "Доставка", "Курьером по Москве за 1–2 дня, почтой по России.", category="Доставка"
    )
    _article(admin, "Возврат товара", "14 дней с момента получения, с чеком.", category="Возврат")
    draft = _article(admin, "Черновик о скидках", "Скоро.", published=False)
    page, dialogs = _hooked(new_page, viewport={"width": 1100, "height": 820})
    errors = watch_errors(page)

    page.goto(f"{server.url}/help")
    expect(page.get_by_role("heading", name="Центр помощи")).to_be_visible()
    expect(page.get_by_role("heading", name="Оплата")).to_be_visible()
    expect(page.get_by_role("link", name="Как оплатить заказ картой")).to_be_visible()
    expect(page.get_by_role("link", name="Черновик о скидках")).to_have_count(0)
    shot(page, "help-center-index")

    page.get_by_role("searchbox", name="Поиск по статьям").fill("оплата заказов")
    page.get_by_role("button", name="Найти").click()
    expect(page.get_by_role("heading", name="Найдено по запросу «оплата заказов»")).to_be_visible()
    results = page.locator(".list li a")
    expect(results.first).to_have_text("Как оплатить заказ картой")
    shot(page, "help-center-search")

    results.first.click()
    expect(page).to_have_url(f"{server.url}/help/{pay['slug']}")
    expect(page).to_have_title("Как оплатить заказ картой")
    body = page.locator(".article .body")
    expect(body.locator("strong")).to_have_text("Visa, Mastercard и Мир")
    # The payload is text: shown literally, nothing ran, no image, no script link.
    expect(body).to_contain_text("<img src=x onerror=alert(1)><script>alert(2)</script>")
    assert body.locator("img, script").count() == 0
    assert body.locator("a[href^='javascript']").count() == 0
    expect(body.get_by_role("link", name="Условия оплаты")).to_have_attribute(
        "rel", "noopener noreferrer"
    )
    # Styled with the widget's colour.
    accent = page.evaluate(
        "getComputedStyle(document.documentElement).getPropertyValue('--td-accent')"
    )
    assert accent.strip().startswith("#")
    shot(page, "help-center-article")
    assert httpx.get(f"{server.url}/help/{draft['slug']}").status_code == 404
    assert _alerts(page) == [] and dialogs == [] and errors == []


def test_widget_suggests_articles_while_typing(
    server: ServerProcess, admin: OperatorClient, new_page: Callable[..., Page]
) -> None:
    if not any(
        a["title"] == "Как оплатить заказ картой"
        for a in admin.http.get("/api/admin/kb/articles").json()["articles"]
    ):
        _article(admin, "Как оплатить заказ картой", PAY_BODY, category="Оплата")
    page, dialogs = _hooked(new_page, viewport={"width": 1280, "height": 860})
    errors = watch_errors(page)
    kb_requests: list[str] = []
    page.on("request", lambda r: kb_requests.append(r.url) if "/kb" in r.url else None)
    chat = open_chat(page, server.url)
    # Nothing of the help center is fetched before the customer types.
    assert not [u for u in kb_requests if "kb." in u], kb_requests

    box = textbox(chat)
    box.press_sequentially("оплата заказов", delay=20)
    suggest = chat.locator(".kb-suggest")
    expect(suggest).to_be_visible()
    items = suggest.locator(".kb-suggest__item")
    expect(items.first.locator("strong")).to_have_text("Как оплатить заказ картой")
    assert items.count() <= 3
    shot(page, "widget-kb-suggestions")

    items.first.click()
    view = chat.locator(".kb-article")
    expect(view).to_be_visible()
    expect(view.locator(".kb-article__title")).to_have_text("Как оплатить заказ картой")
    expect(view.locator(".kb-article__body strong")).to_have_text("Visa, Mastercard и Мир")
    expect(view.locator(".kb-article__body")).to_contain_text("<script>alert(2)</script>")
    assert view.locator(".kb-article__body img, .kb-article__body script").count() == 0
    expect(view.get_by_role("button", name="Это помогло")).to_be_visible()
    shot(page, "widget-kb-article")

    # Not enough: back to the composer, the question still there, and it goes to a person.
    view.get_by_role("button", name="Нет, нужен оператор").click()
    expect(view).to_be_hidden()
    expect(box).to_have_value("оплата заказов")
    box.fill("Оплата заказов картой не проходит, что делать?")
    with page.expect_response(
        lambda r: "/api/support/kb/feedback" in r.url and "ticketId" in (r.request.post_data or "")
    ) as sent:
        box.press("Enter")
    assert sent.value.status == 200
    log = chat.locator("#log")
    expect(log.get_by_text("Оплата заказов картой не проходит, что делать?")).to_be_visible()
    # The operator sees what the widget suggested: a private note in the conversation.
    number = sent.value.request.post_data_json["ticketId"]
    notes = [m for m in admin.open(number)["messages"] if m["kind"] == "note"]
    assert [m["message"] for m in notes] == [
        "📚 Клиент прочитал статью «Как оплатить заказ картой»: не помогло. "
        "Предлагались: «Как оплатить заказ картой»"
    ]
    expect(log).not_to_contain_text("📚")  # the customer does not see the note
    expect(chat.locator(".kb-suggest")).to_be_hidden()
    assert _alerts(page) == [] and dialogs == [] and errors == []


def test_dashboard_writes_an_article_that_the_widget_then_suggests(
    server: ServerProcess, admin: OperatorClient, new_page: Callable[..., Page]
) -> None:
    page, dialogs = _hooked(new_page, viewport={"width": 1360, "height": 900})
    errors = watch_errors(page)
    login(page, server)
    page.get_by_role("link", name="База знаний").click()
    expect(page.get_by_role("heading", name="База знаний", level=1)).to_be_visible()
    expect(page).to_have_title("База знаний — TrustDesk")

    # Written in Markdown, previewed as the server renders and cleans it, saved as a draft.
    page.get_by_label("Заголовок").fill("Сроки гарантийного ремонта")
    page.get_by_role("textbox", name="Раздел", exact=True).fill("Гарантия")
    page.get_by_label("Текст (Markdown)").fill(
        "Ремонтируем по гарантии за **14 дней**.\n\n- Сохраните чек\n- Приложите фото\n\n" + XSS
    )
    page.get_by_role("button", name="Предпросмотр").click()
    preview = page.locator(".kb-preview")
    expect(preview.locator("strong")).to_have_text("14 дней")
    expect(preview.locator("li")).to_have_count(2)
    expect(preview).to_contain_text("<script>alert(2)</script>")
    assert preview.locator("img, script").count() == 0
    shot(page, "dashboard-kb-editor")
    page.get_by_role("button", name="Сохранить").click()
    item = page.locator(".kb-item", has_text="Сроки гарантийного ремонта")
    expect(item.locator(".kb-state")).to_have_text("Черновик")
    found = [
        a
        for a in admin.http.get("/api/admin/kb/articles").json()["articles"]
        if a["title"] == "Сроки гарантийного ремонта"
    ]
    assert len(found) == 1 and found[0]["published"] is False
    slug = found[0]["slug"]
    assert httpx.get(f"{server.url}/help/{slug}").status_code == 404

    # Published: the public page exists.
    page.get_by_label("Опубликована (видна покупателям)").check()
    page.get_by_role("button", name="Сохранить").click()
    expect(item.locator(".kb-state")).to_have_text("Опубликована")
    expect(page.get_by_role("link", name="Открыть в центре помощи ↗")).to_have_attribute(
        "href", f"/help/{slug}"
    )
    public = httpx.get(f"{server.url}/help/{slug}")
    assert public.status_code == 200 and "<strong>14 дней</strong>" in public.text

    # An image goes in as Markdown pointing at the help center's own files.
    page.locator(".kb-form input[type=file]").set_input_files(
        {"name": "box.png", "mimeType": "image/png", "buffer": _png()}
    )
    body = page.get_by_label("Текст (Markdown)")
    expect(body).to_have_value(re.compile(r"!\[\]\(/help/media/[0-9a-f]{64}\.png\)\n$"))
    page.get_by_role("button", name="Сохранить").click()
    expect(page.get_by_text("Статья сохранена и опубликована")).to_be_visible()
    page_html = httpx.get(f"{server.url}/help/{slug}").text
    image = re.search(r'<img src="(/help/media/[0-9a-f]{64}\.png)"', page_html)
    assert image and httpx.get(server.url + image.group(1)).status_code == 200

    # A customer typing a question is offered it, reads it, and is helped: a deflection.
    customer, customer_dialogs = _hooked(new_page)
    chat = open_chat(customer, server.url)
    textbox(chat).press_sequentially("гарантийный ремонт", delay=20)
    suggestion = chat.locator(".kb-suggest__item", has_text="Сроки гарантийного ремонта")
    expect(suggestion).to_be_visible()
    suggestion.click()
    view = chat.locator(".kb-article")
    expect(view.locator(".kb-article__body strong")).to_have_text("14 дней")
    with customer.expect_response(lambda r: "/api/support/kb/feedback" in r.url) as fb:
        view.get_by_role("button", name="Это помогло").click()
    assert fb.value.status == 200
    expect(view.get_by_role("status")).to_have_text(
        "Рады, что статья помогла! Если появятся вопросы — пишите."
    )
    assert _alerts(customer) == [] and customer_dialogs == []

    # The report counts it.
    page.get_by_role("link", name="Отчёт").click()
    card = page.locator(".kb-report")
    expect(
        card.locator("tr", has_text="Сроки гарантийного ремонта").locator("td").nth(1)
    ).to_have_text("1")
    expect(card).to_contain_text("Вопросов решено статьями без оператора:")
    card.scroll_into_view_if_needed()
    shot(page.locator(".kb-report"), "dashboard-kb-report")  # type: ignore[arg-type]

    # An operator links the article from the composer.
    number = admin_ticket(server)
    page.get_by_role("link", name="Тикеты").click()
    open_ticket(page, number)
    page.get_by_role("button", name="Ссылка на статью").click()
    page.get_by_role("searchbox", name="Найти статью…").fill("гарантия")
    page.locator(".kb-pick-item", has_text="Сроки гарантийного ремонта").click()
    reply = page.get_by_role("textbox", name="Ответ")
    expect(reply).to_have_value(f"Сроки гарантийного ремонта: {server.url}/help/{slug}")
    reply.press("Enter")
    answer = conversation(page).locator(".msg.admin", has_text=f"{server.url}/help/{slug}")
    expect(answer).to_be_visible()

    # "Make an article from this answer": the editor opens with the answer as its text.
    answer.get_by_role("button", name="📚 В статью").click()
    expect(page.get_by_role("heading", name="Новая статья")).to_be_visible()
    expect(page.get_by_label("Текст (Markdown)")).to_have_value(
        f"Сроки гарантийного ремонта: {server.url}/help/{slug}"
    )
    expect(page.get_by_label("Заголовок")).to_be_focused()
    assert _alerts(page) == [] and dialogs == [] and errors == []


def admin_ticket(server: ServerProcess) -> str:
    """A customer's ticket for the operator to answer."""
    from tests.support.clients import VisitorClient

    return str(VisitorClient(server.url).send("Сколько длится ремонт по гарантии?")["ticketId"])
