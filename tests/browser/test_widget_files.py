"""Files, screenshots and voice messages in the customer widget, in real headless Chromium.

The customer attaches, pastes and records in the browser; the operator side goes through the
real HTTP API (uploads with the raw file as the body, downloads with the session cookie).
"""

from __future__ import annotations

import io
import math
import re
import struct
from collections.abc import Iterator
from urllib.parse import unquote

import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import Locator, Page, Route, expect

from tests.browser.conftest import shot
from tests.browser.test_widget import (
    FRAME_RU,
    GREETING,
    WAIT,
    Operator,
    customer_row,
    frame_of,
    open_chat,
    send,
    ticket_of,
)
from tests.support.server import ServerProcess
from tests.support.services import wait_until

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def operator(server: ServerProcess) -> Iterator[Operator]:
    op = Operator(server)
    yield op
    op.done()


# ----------------------------------------------------------------------------- sample files


def parcel_png(width: int = 640, height: int = 440) -> bytes:
    """A friendly picture of a parcel (what a customer might photograph)."""
    img = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(img)
    for y in range(height):  # soft sky-blue to lavender gradient
        k = y / height
        draw.line(
            [(0, y), (width, y)],
            fill=(int(219 - 20 * k), int(234 - 30 * k), int(254 - 4 * k)),
        )
    cx, cy = width // 2, height // 2 + 20
    w, h, d = 230, 150, 70
    front = [(cx - w // 2, cy - h // 2), (cx + w // 2, cy - h // 2)]
    draw.ellipse([cx - 170, cy + 60, cx + 190, cy + 110], fill=(196, 206, 230))
    (x0, y0), (x1, y1) = front
    draw.polygon(  # top
        [(x0, y0), (x1, y1), (x1 + d, y1 - d), (x0 + d, y0 - d)],
        fill=(222, 170, 110),
    )
    draw.polygon(  # side
        [
            front[1],
            (front[1][0] + d, front[1][1] - d),
            (front[1][0] + d, front[1][1] + h - d),
            (front[1][0], front[1][1] + h),
        ],
        fill=(176, 120, 66),
    )
    draw.rectangle([front[0][0], front[0][1], front[1][0], front[1][1] + h], fill=(205, 146, 84))
    draw.polygon(  # tape
        [
            (cx - 18, cy - h // 2),
            (cx + 18, cy - h // 2),
            (cx + 18 + d, cy - h // 2 - d),
            (cx - 18 + d, cy - h // 2 - d),
        ],
        fill=(238, 214, 160),
    )
    draw.rectangle([cx - 18, cy - h // 2, cx + 18, cy + h // 2], fill=(238, 214, 160))
    draw.rectangle([cx - 95, cy + 5, cx - 30, cy + 45], fill=(250, 250, 245))  # label
    for i in range(3):
        draw.line([(cx - 88, cy + 15 + i * 10), (cx - 40, cy + 15 + i * 10)], fill=(120, 120, 120))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def small_pdf(title: str = "Инструкция") -> bytes:
    body = (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
        b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 300 200]>>endobj\n"
    )
    return body + f"% {title}\n".encode() + b"trailer<</Root 1 0 R>>\n%%EOF\n" + b"x" * 180_000


def _ogg_crc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def _ogg_page(packets: list[bytes], granule: int, seq: int, flags: int) -> bytes:
    lacing = b""
    for p in packets:
        lacing += b"\xff" * (len(p) // 255) + bytes([len(p) % 255])
    header = struct.pack("<4sBBqIIIB", b"OggS", 0, flags, granule, 0x7D5D, seq, 0, len(lacing))
    page = header + lacing + b"".join(packets)
    return page[:22] + struct.pack("<I", _ogg_crc(page)) + page[26:]


def silent_ogg_opus(seconds: float = 7.0) -> bytes:
    """A real, playable Ogg Opus file of silence (20 ms frames of one TOC byte each)."""
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, 312, 48000, 0, 0)
    tags = b"OpusTags" + struct.pack("<I", 8) + b"TrustDes" + struct.pack("<I", 0)
    frames = math.ceil(seconds / 0.02)
    out = _ogg_page([head], 0, 0, 0x02) + _ogg_page([tags], 0, 1, 0)
    seq, done = 2, 0
    while done < frames:
        n = min(200, frames - done)
        done += n
        last = done == frames
        out += _ogg_page([b"\xf8"] * n, 312 + done * 960, seq, 0x04 if last else 0)
        seq += 1
    return out


# ----------------------------------------------------------------------------- helpers


def upload_as_operator(op: Operator, ticket: str, name: str, data: bytes, **q: str) -> dict:
    r = op.http.post(
        "/api/admin/support/upload",
        params={"ticketId": ticket, "name": name, **q},
        content=data,
        headers={"X-CSRF-Token": op.csrf, "Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 200, r.text
    return r.json()["message"]


def attachments(op: Operator, ticket: str, sender: str = "customer") -> list[tuple[str, str]]:
    """(message kind, attachment kind) of every file message in the ticket, in order."""
    return [
        (m["kind"], m["attachment"]["kind"])
        for m in op.messages(ticket)
        if m["sender_type"] == sender and m.get("attachment")
    ]


BLOB = re.compile(r"^blob:")
UPLOAD = re.compile(r"/api/support/upload\?")


def image_ready(row: Locator) -> None:
    """The image was fetched with the token, shown from a blob: URL, and decoded."""
    img = row.locator(".att-img__img")
    expect(img).to_have_attribute("src", BLOB, timeout=WAIT)
    expect(row.locator(".att-img")).not_to_have_class(re.compile("is-loading"), timeout=WAIT)
    assert img.evaluate("el => el.naturalWidth") > 0


PASTE_SCREENSHOT = """async () => {
    const c = document.createElement('canvas');
    c.width = 480; c.height = 300;
    const g = c.getContext('2d');
    g.fillStyle = '#f8fafc'; g.fillRect(0, 0, 480, 300);
    g.fillStyle = '#2563eb'; g.fillRect(0, 0, 480, 46);
    g.fillStyle = '#ffffff'; g.font = 'bold 20px sans-serif'; g.fillText('Оплата заказа', 16, 30);
    g.fillStyle = '#fee2e2'; g.fillRect(24, 80, 432, 70);
    g.fillStyle = '#b91c1c'; g.font = '18px sans-serif';
    g.fillText('Ошибка 502: платёж отклонён', 44, 122);
    g.fillStyle = '#cbd5e1'; g.fillRect(24, 180, 300, 14); g.fillRect(24, 206, 220, 14);
    const blob = await new Promise(r => c.toBlob(r, 'image/png'));
    const file = new File([blob], 'image.png', {type: 'image/png'});
    const dt = new DataTransfer();
    dt.items.add(file);
    const ev = new ClipboardEvent('paste', {clipboardData: dt, bubbles: true, cancelable: true});
    document.getElementById('input').dispatchEvent(ev);
    return ev.defaultPrevented;
}"""


# ----------------------------------------------------------------------------- tests


def test_customer_attaches_pastes_and_records(
    server: ServerProcess, new_page, operator: Operator
) -> None:
    operator.go_online()  # the operator is there (no "nobody is here" card)
    page: Page = new_page(permissions=["microphone"])
    chat = open_chat(page, server.url + "/")
    attach = chat.get_by_role("button", name="Прикрепить файл")
    expect(attach).to_be_visible()

    # 1. A photo through the paperclip, as the very first message: it starts the ticket, and
    #    the widget follows it (the stored greeting replaces the local one).
    held: list[Route] = []
    page.route(UPLOAD, lambda route: held.append(route))
    with page.expect_file_chooser() as chooser:
        attach.click()
    chooser.value.set_files(
        files=[{"name": "посылка.png", "mimeType": "image/png", "buffer": parcel_png()}]
    )
    progress = chat.get_by_role("progressbar", name="Загрузка… посылка.png")
    expect(progress).to_be_visible()
    expect(chat.get_by_role("button", name="Отменить загрузку: посылка.png")).to_be_visible()
    wait_until(lambda: bool(held), 10, "the upload request")
    # The name is the customer's text: in a header, never in the URL (access logs keep URLs).
    assert "name=" not in held[0].request.url and "%D0" not in held[0].request.url
    assert unquote(held[0].request.headers["x-trustdesk-name"]) == "посылка.png"
    held[0].continue_()
    page.unroute(UPLOAD)
    photo = chat.locator(".row--customer[data-id]", has=chat.locator(".att-img"))
    expect(photo).to_have_count(1, timeout=WAIT)
    expect(progress).to_have_count(0)
    image_ready(photo)
    ticket = ticket_of(page)
    expect(chat.locator(".row--agent[data-id]", has_text=GREETING)).to_have_count(1, timeout=WAIT)
    expect(chat.locator(".row", has_text=GREETING)).to_have_count(1)

    # 2. A PDF through the hidden input.
    chat.locator("#file-input").set_input_files(
        files=[{"name": "чек-10234.pdf", "mimeType": "application/pdf", "buffer": small_pdf()}]
    )
    card = chat.locator(".row--customer[data-id] .att-file")
    expect(card).to_have_count(1, timeout=WAIT)
    expect(card.locator(".att-file__name")).to_have_text("чек-10234.pdf")
    expect(card.locator(".att-file__size")).to_have_text(re.compile(r"^17\d КБ$"))

    # 3. A screenshot pasted from the clipboard.
    assert frame_of(page).evaluate(PASTE_SCREENSHOT) is True
    shots = chat.locator(".row--customer[data-id] .att-img")
    expect(shots).to_have_count(2, timeout=WAIT)
    expect(shots.nth(1)).to_have_attribute("aria-label", re.compile("Скриншот"))

    # 4. A voice message: record (fake microphone), stop, listen, send.
    chat.get_by_role("button", name="Записать голосовое").click()
    stop = chat.get_by_role("button", name="Остановить запись")
    expect(stop).to_be_visible(timeout=WAIT)
    expect(chat.get_by_role("button", name="Отменить запись")).to_be_visible()
    expect(chat.locator("#composer")).to_be_hidden()
    expect(chat.get_by_role("timer")).to_have_text(re.compile(r"^0:0[2-9]$"), timeout=WAIT)
    shot(page, "widget-voice-recording", animations="disabled")
    stop.click()
    expect(chat.get_by_role("button", name="Прослушать")).to_be_visible(timeout=WAIT)
    chat.get_by_role("button", name="Отправить голосовое").click()
    expect(chat.locator("#composer")).to_be_visible()
    voice = chat.locator(".row--customer[data-id] .voice")
    expect(voice).to_have_count(1, timeout=WAIT)
    expect(voice.locator("audio")).to_have_attribute("src", BLOB, timeout=WAIT)
    expect(voice.locator(".voice__time")).to_have_text(re.compile(r"^0:0[1-9]$"), timeout=WAIT)

    # Cancelling a recording sends nothing.
    chat.get_by_role("button", name="Записать голосовое").click()
    chat.get_by_role("button", name="Отменить запись").click()
    expect(chat.locator("#composer")).to_be_visible()

    # The operator sees all four, with the right kinds.
    wait_until(lambda: len(attachments(operator, ticket)) == 4, 10, "four attachments")
    assert attachments(operator, ticket) == [
        ("file", "image"),
        ("file", "file"),
        ("file", "image"),
        ("voice", "audio"),
    ]
    names = [m["attachment"]["name"] for m in operator.messages(ticket) if m.get("attachment")]
    assert names[0] == "посылка.png" and names[1] == "чек-10234.pdf"
    assert names[2].startswith("Скриншот") and names[3].startswith("voice-")
    # Nothing was sent twice, and a reload shows the files again (fetched with the token).
    page.reload()
    chat = open_chat(page, server.url + "/")
    expect(chat.locator(".row[data-id] .att-img")).to_have_count(2, timeout=WAIT)
    expect(chat.locator(".row[data-id] .att-file")).to_have_count(1)
    expect(chat.locator(".row[data-id] .voice")).to_have_count(1)


def test_operator_files_show_as_preview_card_and_player(
    server: ServerProcess, new_page, operator: Operator
) -> None:
    operator.go_online()  # the operator is there: no "nobody is here" card
    page = new_page()
    chat = open_chat(page, server.url + "/")
    send(chat, "Пришлите, пожалуйста, инструкцию к рюкзаку и фото вблизи")
    ticket = ticket_of(page)
    operator.open_ticket(ticket)
    operator.reply(ticket, "Конечно! Вот фото застёжки, инструкция и голосовое с пояснением 🙂")
    upload_as_operator(operator, ticket, "рюкзак-вблизи.png", parcel_png())
    upload_as_operator(operator, ticket, "Инструкция Urban 22L.pdf", small_pdf())
    upload_as_operator(operator, ticket, "пояснение.ogg", silent_ogg_opus(7), voice="true")

    photo = chat.locator(".row--agent[data-id]", has=chat.locator(".att-img"))
    expect(photo).to_have_count(1, timeout=WAIT)
    image_ready(photo)
    card = chat.locator(".row--agent[data-id] .att-file")
    expect(card).to_have_count(1, timeout=WAIT)
    expect(card.locator(".att-file__name")).to_have_text("Инструкция Urban 22L.pdf")
    player = chat.locator(".row--agent[data-id] .voice")
    expect(player).to_have_count(1, timeout=WAIT)
    expect(player.locator("audio")).to_have_attribute("src", BLOB, timeout=WAIT)
    expect(player.locator(".voice__time")).to_have_text("0:07", timeout=WAIT)
    shot(page, "widget-files", animations="disabled")

    # Play the voice message.
    player.get_by_role("button", name="Воспроизвести").click()
    expect(player.get_by_role("button", name="Пауза")).to_be_visible(timeout=WAIT)
    player.get_by_role("button", name="Пауза").click()
    expect(player.get_by_role("button", name="Воспроизвести")).to_be_visible()

    # The image opens in a lightbox; Escape closes it.
    chat.get_by_role("button", name="Открыть изображение: рюкзак-вблизи.png").click()
    viewer = chat.get_by_role("dialog", name="Просмотр изображения")
    expect(viewer).to_be_visible()
    expect(viewer.locator("img")).to_have_attribute("src", BLOB)
    page.keyboard.press("Escape")
    expect(viewer).to_be_hidden()
    expect(page.locator(FRAME_RU)).to_be_visible()  # Escape closed the viewer, not the chat

    # Download = a blob fetched with the Bearer token, saved under its name.
    with page.expect_download() as dl:
        card.get_by_role("button", name="Скачать: Инструкция Urban 22L.pdf").click()
    assert dl.value.suggested_filename == "Инструкция Urban 22L.pdf"
    with open(dl.value.path(), "rb") as fh:
        assert fh.read().startswith(b"%PDF-")

    # The preview next to the closed launcher names the file, not a raw file name.
    page.get_by_role("button", name="Свернуть чат").first.click()
    upload_as_operator(operator, ticket, "размеры.png", parcel_png(320, 220))
    preview = page.locator("trustdesk-widget .preview")
    expect(preview).to_contain_text("🖼 Фото", timeout=WAIT)


DROP_PHOTO = """async () => {
    const c = document.createElement('canvas');
    c.width = 200; c.height = 120;
    const g = c.getContext('2d');
    g.fillStyle = '#22c55e'; g.fillRect(0, 0, 200, 120);
    const blob = await new Promise(r => c.toBlob(r, 'image/png'));
    const dt = new DataTransfer();
    dt.items.add(new File([blob], 'серийный-номер.png', {type: 'image/png'}));
    const target = document.getElementById('scroller');
    target.dispatchEvent(new DragEvent('dragenter', {dataTransfer: dt, bubbles: true}));
    window.__drop = () => target.dispatchEvent(
        new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
}"""


def test_drag_and_drop_a_photo(server: ServerProcess, new_page, operator: Operator) -> None:
    page = new_page()
    chat = open_chat(page, server.url + "/")
    send(chat, "Где найти серийный номер?")
    ticket = ticket_of(page)
    frame = frame_of(page)
    frame.evaluate(DROP_PHOTO)
    expect(chat.get_by_text("Отпустите, чтобы отправить")).to_be_visible()
    frame.evaluate("() => window.__drop()")
    expect(chat.locator("#drop")).to_be_hidden()
    photo = chat.locator(".row--customer[data-id]", has=chat.locator(".att-img"))
    expect(photo).to_have_count(1, timeout=WAIT)
    image_ready(photo)
    wait_until(lambda: attachments(operator, ticket) == [("file", "image")], 10, "the photo")


def test_refused_uploads_say_why(server: ServerProcess, new_page, operator: Operator) -> None:
    page = new_page()
    chat = open_chat(page, server.url + "/")
    send(chat, "Сейчас пришлю файлы")
    expect(customer_row(chat, "Сейчас пришлю файлы")).to_have_count(1, timeout=WAIT)
    ticket = ticket_of(page)
    cases = [
        ("notes.txt", "text/plain", b"just text", "Такой файл не отправить"),
        ("broken.png", "image/png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "Не получилось открыть"),
        ("huge.pdf", "application/pdf", b"%PDF-1.4\n" + b"0" * (11 * 1024 * 1024), "до 10 МБ"),
    ]
    for name, mime, data, reason in cases:
        chat.locator("#file-input").set_input_files(
            files=[{"name": name, "mimeType": mime, "buffer": data}]
        )
        row = chat.locator(".row--upload", has_text=name)
        expect(row).to_have_attribute("data-state", "failed", timeout=30_000)
        expect(row.get_by_role("alert")).to_contain_text(reason)
        row.get_by_role("button", name=f"Скрыть: {name}").click()
        expect(row).to_have_count(0)
    assert attachments(operator, ticket) == []
