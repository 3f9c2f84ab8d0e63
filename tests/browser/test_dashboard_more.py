"""The dashboard's files, voice messages, report, customer data and integrations, in real
headless Chromium against a real server (the customer side over the real visitor API)."""

from __future__ import annotations

import base64
import io
import json
import random
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import FilePayload, Page, Request, expect

from tests.browser.conftest import shot
from tests.browser.test_dashboard import conversation, login, open_ticket, row, watch_errors
from tests.integrations.receiver import Receiver
from tests.support.clients import OperatorClient, VisitorClient
from tests.support.server import ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, ServerProcess
from tests.support.services import wait_until

pytestmark = pytest.mark.browser

SLOW = 30_000  # ms: the machine running these is small and busy


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """This module's own server: webhooks may call the test's receiver on 127.0.0.1."""
    srv = ServerProcess(
        tmp_path_factory.mktemp("browser-more"),
        extra_env={
            "TRUSTDESK_WEBHOOK_HOSTS": "127.0.0.1",
            "TRUSTDESK_WEBHOOK_POLL_SECONDS": "0.5",
            "TRUSTDESK_WEBHOOK_BACKOFF_SECONDS": "0.5",
            "TRUSTDESK_WEBHOOK_BACKOFF_MAX_SECONDS": "1",
        },
    )
    srv.create_operator(ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, role="admin")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def patient_expect() -> Iterator[None]:
    """Uploads, recordings and reports take longer on a busy machine: wait up to 15 s."""
    expect.set_options(timeout=15_000)
    yield
    expect.set_options(timeout=5_000)  # Playwright's default, for the other modules


# ---------------------------------------------------------------- test files


def png(width: int = 320, height: int = 200, color: str = "#2f6bff", label: str = "") -> bytes:
    img = Image.new("RGB", (width, height), "#f3f5fa")
    d = ImageDraw.Draw(img)
    d.rounded_rectangle((12, 12, width - 12, height - 12), radius=18, fill=color)
    d.ellipse((width // 2 - 30, height // 2 - 30, width // 2 + 30, height // 2 + 30), fill="white")
    if label:
        d.text((24, 20), label, fill="white")
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def pdf() -> bytes:
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
        b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n"
        b"trailer<</Root 1 0 R>>\n%%EOF\n"
    )


def customer_upload(customer: VisitorClient, data: bytes, name: str) -> dict[str, Any]:
    r = customer.http.post(
        "/api/support/upload",
        params={"name": name, "ticketId": customer.ticket_id},
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()["message"]
    return out


def attachments_seen_by(customer: VisitorClient) -> list[dict[str, Any]]:
    return [m for m in customer.messages()["messages"] if m.get("attachment")]


def new_ticket(server: ServerProcess, text: str) -> VisitorClient:
    customer = VisitorClient(server.url)
    customer.send(text)
    return customer


def wait_loaded(img: Any) -> None:
    """The <img> really loaded (the file endpoint answered with the picture)."""
    expect(img).to_be_visible(timeout=SLOW)
    expect(img).to_have_js_property("complete", True, timeout=SLOW)
    assert img.evaluate("el => el.naturalWidth") > 0


# ---------------------------------------------------------------- tests


def test_operator_sends_image_pdf_and_voice(
    server: ServerProcess, new_page: Callable[..., Page]
) -> None:
    customer = new_ticket(server, "Здравствуйте! Кнопка оплаты не работает, вот скриншот")
    customer_upload(customer, png(420, 240, "#d92d2d", "error 500"), "ошибка.png")
    tid = customer.ticket_id
    assert tid

    page = new_page(permissions=["microphone"], viewport={"width": 1280, "height": 1040})
    errors = watch_errors(page)
    login(page, server)
    expect(row(page, tid).locator(".row-preview")).to_have_text("📎 ошибка.png")
    open_ticket(page, tid)
    log = conversation(page)

    # The customer's upload is an image preview in the conversation, and it loads.
    wait_loaded(log.locator(".msg.customer .att-image img"))

    # Click to enlarge; Esc closes.
    log.get_by_role("button", name="Открыть изображение ошибка.png").click()
    dialog = page.get_by_role("dialog", name="ошибка.png")
    expect(dialog).to_be_visible()
    wait_loaded(dialog.locator("img"))
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    # The paperclip: an image and a PDF, staged, then sent with a caption.
    uploads: list[Request] = []
    page.on("request", lambda r: uploads.append(r) if "/support/upload" in r.url else None)
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Прикрепить файл").click()
    files: list[FilePayload] = [
        {"name": "photo.png", "mimeType": "image/png", "buffer": png(400, 230, "#17a34a")},
        {"name": "invoice.pdf", "mimeType": "application/pdf", "buffer": pdf()},
    ]
    chooser.value.set_files(files)
    staged = page.get_by_role("list", name="Файлы к отправке")
    expect(staged.get_by_role("listitem")).to_have_count(2)
    page.get_by_role("textbox", name="Ответ").fill("Вот пример и счёт")
    page.get_by_role("button", name="Отправить", exact=True).click()
    expect(staged).to_be_hidden()
    wait_loaded(log.locator(".msg.admin .att-image img"))
    card = log.locator(".msg.admin .att-file")
    expect(card).to_contain_text("invoice.pdf", timeout=SLOW)
    expect(card.locator(".att-file-size")).to_have_text(re.compile(r"\d+ Б"))
    # The name and caption are people's text: in headers, never in the URL that logs keep.
    assert len(uploads) == 2
    assert all("name=" not in r.url and "caption=" not in r.url for r in uploads)
    sent = {
        unquote(r.headers["x-trustdesk-name"]): unquote(r.headers.get("x-trustdesk-caption", ""))
        for r in uploads
    }
    assert sent == {"photo.png": "Вот пример и счёт", "invoice.pdf": ""}

    # The file card downloads the file itself.
    with page.expect_download() as dl:
        log.get_by_role("link", name="Скачать invoice.pdf").click()
    assert dl.value.suggested_filename == "invoice.pdf"
    path = dl.value.path()
    assert path is not None
    with open(path, "rb") as f:  # noqa: PTH123
        assert f.read().startswith(b"%PDF-")

    # A voice message: record (Chromium's fake microphone), stop, listen, send.
    page.get_by_role("button", name="Записать голосовое").click()
    expect(page.get_by_text("Идёт запись")).to_be_visible()
    expect(page.get_by_role("timer")).to_have_text(re.compile(r"^0:0[2-9] / 5:00$"), timeout=SLOW)
    page.get_by_role("button", name="Остановить запись").click()
    preview = page.locator(".recorder audio")
    expect(preview).to_be_visible()
    page.get_by_role("button", name="Отправить голосовое", exact=True).click()
    expect(page.locator(".recorder")).to_be_hidden()
    voice = log.locator(".msg.admin .att-audio.voice")
    expect(voice).to_contain_text("Голосовое сообщение", timeout=SLOW)
    expect(voice.locator("audio")).to_have_attribute("src", re.compile(r"^/api/admin/files/"))
    expect(row(page, tid).locator(".row-preview")).to_have_text("вы: 🎤 Голосовое сообщение")

    # What the customer gets: an image (with the caption), a file and an audio message.
    def customer_has_all() -> bool:
        kinds = {(m["sender_type"], m["attachment"]["kind"]) for m in attachments_seen_by(customer)}
        return {("admin", "image"), ("admin", "file"), ("admin", "audio")} <= kinds

    wait_until(customer_has_all, 20, "the customer sees all three attachments")
    mine = [m for m in attachments_seen_by(customer) if m["sender_type"] == "admin"]
    by_kind = {m["attachment"]["kind"]: m for m in mine}
    assert by_kind["image"]["message"] == "Вот пример и счёт"
    assert by_kind["image"]["attachment"]["width"] == 400
    assert by_kind["file"]["attachment"]["name"] == "invoice.pdf"
    assert by_kind["file"]["kind"] == "file"
    assert by_kind["audio"]["kind"] == "voice"
    assert by_kind["audio"]["attachment"]["mime"] in ("audio/webm", "audio/ogg")
    assert by_kind["audio"]["attachment"]["size"] > 1000

    page.locator(".messages-scroll").evaluate("el => el.scrollTop = el.scrollHeight")
    shot(page, "dashboard-files")
    assert errors == []


def test_paste_drop_and_upload_errors(server: ServerProcess, new_page: Callable[..., Page]) -> None:
    customer = new_ticket(server, "Можно прислать скриншот заказа?")
    tid = customer.ticket_id
    assert tid
    page = new_page()
    errors = watch_errors(page)
    login(page, server)
    open_ticket(page, tid)
    log = conversation(page)
    reply = page.get_by_role("textbox", name="Ответ")
    staged = page.get_by_role("list", name="Файлы к отправке")

    # Paste of a screenshot (what Ctrl+V with an image on the clipboard delivers).
    b64 = base64.b64encode(png(300, 180, "#b7791f")).decode()
    reply.evaluate(
        """(el, b64) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], "image.png", { type: "image/png" }));
            el.focus();
            el.dispatchEvent(new ClipboardEvent("paste", {
                clipboardData: dt, bubbles: true, cancelable: true }));
        }""",
        b64,
    )
    expect(staged.get_by_role("listitem")).to_have_count(1)
    expect(staged).to_contain_text(re.compile(r"screenshot-\d{4}-\d\d-\d\d-\d{6}\.png"))
    expect(staged.locator("img")).to_be_visible()
    reply.press("Enter")
    wait_loaded(log.locator(".msg.admin .att-image img"))
    wait_until(
        lambda: any(
            a["attachment"]["name"].startswith("screenshot-") for a in attachments_seen_by(customer)
        ),
        20,
        "the customer gets the pasted screenshot",
    )

    # Drag and drop onto the conversation: a text file is refused on the spot, a PNG staged.
    drop = """([names, b64]) => {
        const pane = document.querySelector(".conv-pane");
        const dt = new DataTransfer();
        for (const name of names) {
            const png = name.endsWith(".png");
            const body = png ? Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)) : "just text";
            dt.items.add(new File([body], name, { type: png ? "image/png" : "text/plain" }));
        }
        const fire = (type) => pane.dispatchEvent(new DragEvent(type, {
            dataTransfer: dt, bubbles: true, cancelable: true }));
        fire("dragenter");
        fire("dragover");
        window.__dropActive = pane.classList.contains("drop-active");
        fire("drop");
    }"""
    page.evaluate(drop, [["notes.txt", "dropped.png"], b64])
    assert page.evaluate("window.__dropActive") is True
    expect(page.locator(".conv-pane.drop-active")).to_have_count(0)
    expect(page.locator(".composer-error")).to_contain_text("notes.txt")
    expect(page.locator(".composer-error")).to_contain_text("Такой тип файла не принимается")
    expect(staged.get_by_role("listitem")).to_have_count(1)
    expect(staged).to_contain_text("dropped.png")
    page.get_by_role("button", name="Убрать файл dropped.png").click()
    expect(staged).to_be_hidden()

    # A slow network: the upload shows its progress in the conversation until it is done.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    slow = {"offline": False, "latency": 50, "downloadThroughput": -1}
    cdp.send("Network.emulateNetworkConditions", {**slow, "uploadThroughput": 60 * 1024})
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Прикрепить файл").click()
    noise = Image.frombytes("RGB", (256, 256), random.randbytes(256 * 256 * 3))
    buf = io.BytesIO()
    noise.save(buf, "PNG")
    chooser.value.set_files(
        {"name": "noise.png", "mimeType": "image/png", "buffer": buf.getvalue()}
    )
    page.get_by_role("button", name="Отправить", exact=True).click()
    bar = log.get_by_role("progressbar", name="Загрузка noise.png")
    expect(bar).to_be_visible()
    expect(log.locator(".msg.upload .upload-pct")).to_have_text(re.compile(r"^([1-9]\d?)%$"))
    cdp.send("Network.emulateNetworkConditions", {**slow, "uploadThroughput": -1})
    expect(bar).to_have_count(0, timeout=SLOW)
    expect(log.get_by_role("button", name="Открыть изображение noise.png")).to_be_visible()

    # A file that claims to be a PNG but is not: the server refuses it (415), translated,
    # and the failed upload offers a retry or to drop it.
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Прикрепить файл").click()
    chooser.value.set_files(
        {"name": "fake.png", "mimeType": "image/png", "buffer": b"this is not an image"}
    )
    page.get_by_role("button", name="Отправить", exact=True).click()
    failed = log.locator(".msg.upload.failed")
    expect(failed).to_contain_text("Такой тип файла не принимается", timeout=SLOW)
    expect(failed.get_by_role("button", name="Повторить")).to_be_visible()
    failed.get_by_role("button", name="Убрать").click()
    expect(failed).to_have_count(0)
    assert not any(a["attachment"]["name"] == "fake.png" for a in attachments_seen_by(customer))
    assert errors == []


def test_report_with_chart_and_ratings(
    server: ServerProcess, new_page: Callable[..., Page]
) -> None:
    op = OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    rated: list[str] = []
    for score, comment in ((5, "Быстро помогли, спасибо!"), (4, None)):
        c = new_ticket(server, f"Вопрос про заказ ({score})")
        assert c.ticket_id
        op.open(c.ticket_id)
        op.reply(c.ticket_id, "Сейчас проверю и вернусь с ответом.")
        op.close(c.ticket_id)
        r = c.http.post(
            "/api/support/rate", json={"ticketId": c.ticket_id, "score": score, "comment": comment}
        )
        assert r.status_code == 200, r.text
        rated.append(c.ticket_id)

    page = new_page(viewport={"width": 1360, "height": 900})
    errors = watch_errors(page)
    login(page, server)

    # The customer panel shows the rating as stars with the comment.
    page.get_by_role("button", name="Закрытые").click()
    open_ticket(page, rated[0])
    info = page.get_by_role("complementary", name="О покупателе")
    expect(info.get_by_role("img", name="Оценка: 5 из 5")).to_be_visible()
    expect(info.locator("blockquote")).to_have_text("Быстро помогли, спасибо!")

    page.get_by_role("link", name="Отчёт").click()
    expect(page.get_by_role("heading", name="Отчёт")).to_be_visible()
    expect(page).to_have_title(re.compile("^Отчёт — TrustDesk$"))
    chart = page.get_by_role("img", name=re.compile("^Обращения по дням"))
    expect(chart).to_be_visible(timeout=SLOW)
    bars = chart.locator("g.bar")
    expect(bars).to_have_count(31)  # 30 days back and today
    today = bars.last
    assert int(today.get_attribute("data-value") or 0) >= 2
    expect(today.locator("rect.fill")).to_have_attribute("height", re.compile(r"^[1-9]"))
    tickets = page.locator(".kpi[data-kpi='tickets'] .kpi-value")
    assert int(tickets.inner_text()) >= 2
    expect(page.locator(".kpi[data-kpi='first-response'] .kpi-value")).to_have_text(
        re.compile(r"^\d+ (сек|мин|ч)")
    )
    expect(page.locator(".kpi[data-kpi='resolution'] .kpi-value")).not_to_have_text("—")
    expect(page.locator(".kpi[data-kpi='rating'] .kpi-value")).to_have_text("4,5 / 5")
    dist = page.get_by_role("list", name="Оценки покупателей")
    expect(dist.locator("[data-score='5']")).to_have_attribute("data-count", "1")
    expect(dist.locator("[data-score='4']")).to_have_attribute("data-count", "1")
    expect(dist.locator("[data-score='1']")).to_have_attribute("data-count", "0")

    page.get_by_role("button", name="7 дней").click()
    expect(page.get_by_role("button", name="7 дней")).to_have_attribute("aria-pressed", "true")
    expect(bars).to_have_count(8)
    page.get_by_role("button", name="30 дней").click()
    expect(bars).to_have_count(31)
    shot(page, "dashboard-report")

    # English too.
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", name="Report")).to_be_visible()
    expect(page.get_by_role("img", name=re.compile("^Conversations per day"))).to_be_visible()
    page.get_by_role("button", name="Русский").click()
    expect(page.get_by_role("heading", name="Отчёт")).to_be_visible()
    assert errors == []


def test_webhooks_and_api_tokens(server: ServerProcess, new_page: Callable[..., Page]) -> None:
    page = new_page(
        viewport={"width": 1360, "height": 1180}, permissions=["clipboard-read", "clipboard-write"]
    )
    errors = watch_errors(page)
    login(page, server)
    page.get_by_role("link", name="Настройки").click()
    expect(page.get_by_role("heading", name="Вебхуки")).to_be_visible()
    expect(page.get_by_text("Вебхуков пока нет.")).to_be_visible()

    with Receiver() as receiver:
        # A host that is not allowed: the server's refusal, translated.
        page.get_by_label("URL вебхука").fill("https://example.com/hook")
        page.get_by_role("button", name="Добавить вебхук").click()
        expect(page.get_by_text("Этот хост не разрешён")).to_be_visible()

        page.get_by_label("URL вебхука").fill(receiver.url)
        page.get_by_label("Описание (необязательно)").fill("CRM: новые обращения")
        page.get_by_role("button", name="Добавить вебхук").click()
        secret = page.get_by_label("Ключ подписи (X-TrustDesk-Signature)")
        expect(secret).to_have_value(re.compile(r"^whsec_"))
        key = secret.input_value()
        page.get_by_role("button", name="Скопировать").click()
        expect(page.get_by_text("Скопировано в буфер обмена.")).to_be_visible()
        assert page.evaluate("navigator.clipboard.readText()") == key
        hook = page.locator(".hook-row", has_text=receiver.url)
        expect(hook).to_contain_text("CRM: новые обращения")
        expect(hook).to_contain_text("Новое сообщение")

        # Something happens: a customer writes. The receiver gets the signed events.
        customer = new_ticket(server, "Проверка вебхука")
        receiver.wait_for(lambda got: len(got) >= 3, timeout=30)  # created + 2 messages
        assert set(receiver.events()) >= {"ticket.created", "message.created"}
        op = OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)

        def all_delivered() -> bool:
            hooks = op.http.get("/api/admin/webhooks").json()["webhooks"]
            d = hooks[0]["deliveries"]
            return bool(d["ok"] >= 3 and d["pending"] == 0)

        wait_until(all_delivered, 20, "deliveries marked ok")

        page.get_by_role("button", name=f"Журнал доставок: {receiver.url}").click()
        log = page.get_by_role("table", name=f"Журнал доставок: {receiver.url}")
        expect(log).to_be_visible(timeout=SLOW)
        rows = log.locator("tbody tr")
        assert rows.count() >= 3
        first_created = log.locator("tr[data-status='ok']", has_text="ticket.created").first
        expect(first_created).to_contain_text("доставлено")
        expect(first_created.locator("td").nth(2)).to_have_text("1")
        expect(first_created.locator("td").nth(3)).to_have_text("200")
        assert customer.ticket_id
        page.get_by_role("button", name="Готово").click()
        expect(page.get_by_label("Ключ подписи (X-TrustDesk-Signature)")).to_have_count(0)

    # An API token: shown once, works, listed by prefix only, revocable.
    page.get_by_label("Имя токена").fill("CRM")
    page.get_by_label(re.compile("Отправка сообщений")).check()
    page.get_by_role("button", name="Создать токен").click()
    token_box = page.get_by_label("Новый API-токен")
    expect(token_box).to_have_value(re.compile(r"^td_"))
    token = token_box.input_value()
    expect(page.get_by_text("Токен показан один раз")).to_be_visible()
    tok_row = page.locator(".token-row", has_text="CRM")
    expect(tok_row).to_contain_text("Чтение тикетов")
    expect(tok_row).to_contain_text("Отправка сообщений")
    expect(tok_row).to_contain_text("активен")
    api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"})
    assert api.get("/api/admin/support/tickets").status_code == 200

    page.get_by_role("heading", name="Вебхуки").evaluate(
        "el => { el.scrollIntoView({ block: 'start' }); el.closest('.settings').scrollTop -= 24; }"
    )
    shot(page, "dashboard-settings-integrations")

    page.reload()
    expect(page.get_by_role("heading", name="API-токены")).to_be_visible()
    expect(page.locator(".token-row", has_text="CRM")).to_contain_text(token[:6])
    assert token not in page.content()
    assert key not in page.content()

    page.get_by_role("button", name="Отозвать: CRM").click()
    page.get_by_role("button", name="Да, отозвать").click()
    expect(page.locator(".token-row", has_text="CRM")).to_contain_text("отозван")
    assert api.get("/api/admin/support/tickets").status_code == 401

    # Deleting the webhook.
    page.get_by_role("button", name=re.compile("^Удалить вебхук: ")).click()
    page.get_by_role("button", name="Да, удалить").click()
    expect(page.get_by_text("Вебхуков пока нет.")).to_be_visible()
    assert errors == []


def test_export_and_delete_customer_data(
    server: ServerProcess, new_page: Callable[..., Page]
) -> None:
    customer = new_ticket(server, "Удалите, пожалуйста, мои данные")
    customer_upload(customer, png(120, 90, "#6a7488"), "паспорт.png")
    tid = customer.ticket_id
    assert tid
    page = new_page()
    errors = watch_errors(page)
    login(page, server)
    open_ticket(page, tid)
    info = page.get_by_role("complementary", name="О покупателе")

    with page.expect_download() as dl:
        info.get_by_role("button", name="Экспорт данных (JSON)").click()
    assert dl.value.suggested_filename.endswith(".json")
    path = dl.value.path()
    assert path is not None
    with open(path, encoding="utf-8") as f:  # noqa: PTH123
        data = json.load(f)
    assert data["visitor"]["id"] == customer.visitor_id
    exported = {t["ticketId"]: t for t in data["tickets"]}
    assert tid in exported
    texts = [m["message"] for m in exported[tid]["messages"]]
    assert "Удалите, пожалуйста, мои данные" in texts
    expect(page.locator(".toast")).to_contain_text("Данные клиента выгружены")

    # Cancel first: nothing happens.
    info.get_by_role("button", name="Удалить данные клиента").click()
    dialog = page.get_by_role("dialog", name="Удалить данные клиента?")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Отмена").click()
    expect(dialog).to_have_count(0)
    assert customer.http.get(f"/api/support/messages/{tid}").status_code == 200

    info.get_by_role("button", name="Удалить данные клиента").click()
    dialog.get_by_role("button", name="Удалить навсегда").click()
    expect(page.locator(".toast")).to_contain_text("Данные клиента удалены: тикетов — 1")
    expect(page).to_have_url(re.compile(r"#/tickets$"))
    expect(page.get_by_role("heading", name="Выберите тикет")).to_be_visible()
    expect(row(page, tid)).to_have_count(0)
    assert customer.http.get(f"/api/support/messages/{tid}").status_code == 401
    assert errors == []
