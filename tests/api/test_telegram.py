"""The Telegram channel against the local Bot API stand-in (tests/support/telegram_api.py,
the one stand-in of the suite: the real Bot API cannot be reached from here), on SQLite and
PostgreSQL: long polling, then webhook mode with its secret header."""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.api.test_files import OGG, PDF
from tests.support.clients import OperatorClient
from tests.support.server import ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, ServerProcess
from tests.support.services import Postgres, free_port, wait_until
from tests.support.telegram_api import TOKEN, BotApi

_n = itertools.count()
_chats = itertools.count(5_000_001)


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), "orange").save(out, "PNG")
    return out.getvalue()


def _server(
    request: pytest.FixtureRequest,
    tmp: pytest.TempPathFactory,
    api: BotApi,
    db: str,
    **env: str,
) -> ServerProcess:
    url = None
    if db == "postgres":
        pg: Postgres = request.getfixturevalue("postgres")
        url = pg.create_database(f"telegram_{next(_n)}")
    port = free_port()
    srv = ServerProcess(
        tmp.mktemp(f"telegram-{db}"),
        database_url=url,
        port=port,
        extra_env={
            "TRUSTDESK_TELEGRAM_BOT_TOKEN": TOKEN,
            "TRUSTDESK_TELEGRAM_API_URL": api.url,
            "TRUSTDESK_TELEGRAM_POLL_SECONDS": "1",
            **env,
        },
    )
    srv.create_operator(ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, role="admin")
    return srv.start()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, bot_api: BotApi
) -> Iterator[ServerProcess]:
    srv = _server(request, tmp_path_factory, bot_api, request.param)
    yield srv
    srv.stop()


@pytest.fixture
def operator(server: ServerProcess) -> OperatorClient:
    return OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)


def chat_ticket(operator: OperatorClient, name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = []

    def listed() -> bool:
        found[:] = [t for t in operator.tickets(status="all") if t["customer_name"] == name]
        return bool(found)

    wait_until(listed, 20, f"a ticket from {name}")
    return found[0]


def customer_messages(operator: OperatorClient, number: str, count: int) -> list[dict[str, Any]]:
    def of() -> list[dict[str, Any]]:
        return [m for m in operator.open(number)["messages"] if m["sender_type"] == "customer"]

    wait_until(lambda: len(of()) >= count, 20, f"{count} customer messages on {number}")
    return of()


def test_chat_with_files_both_ways_by_long_polling(
    bot_api: BotApi, operator: OperatorClient, server: ServerProcess
) -> None:
    chat = next(_chats)
    name = f"Мария {chat}"
    bot_api.customer_writes(chat, name, text="Здравствуйте! Можно оплатить при получении?")
    t = chat_ticket(operator, name)
    number = t["ticketId"]
    assert t["channel"] == "telegram"
    # Photos (the largest size), documents and voice notes, through the upload checks.
    small = bot_api.add_file(b"not even an image", "photos/small.jpg")
    big = bot_api.add_file(png_bytes(), "photos/big.jpg")
    doc = bot_api.add_file(PDF, "documents/check.pdf")
    voice = bot_api.add_file(OGG, "voice/note.oga")
    bot_api.customer_writes(
        chat,
        name,
        caption="Вот чек",
        photo=[
            {"file_id": small, "file_unique_id": small, "width": 8, "height": 6},
            {"file_id": big, "file_unique_id": big, "width": 32, "height": 24},
        ],
    )
    bot_api.customer_writes(
        chat,
        name,
        document={"file_id": doc, "file_unique_id": doc, "file_name": "чек.pdf"},
    )
    bot_api.customer_writes(
        chat, name, voice={"file_id": voice, "file_unique_id": voice, "duration": 2}
    )
    # (a caption is a text message before its file; a file without one is the file alone)
    msgs = customer_messages(operator, number, 5)
    assert msgs[0]["message"] == "Здравствуйте! Можно оплатить при получении?"
    assert msgs[1]["message"] == "Вот чек"
    photo, pdf, note = msgs[2]["attachment"], msgs[3]["attachment"], msgs[4]
    assert (photo["kind"], photo["width"], photo["height"]) == ("image", 32, 24)
    assert (pdf["mime"], pdf["name"]) == ("application/pdf", "чек.pdf")
    assert note["kind"] == "voice" and note["attachment"]["kind"] == "audio"
    assert len([x for x in operator.tickets(status="all") if x["customer_name"] == name]) == 1

    # The operator's reply, a photo and the closing notice go back to the chat.
    before = len(bot_api.sent)
    operator.reply(number, "Да, можно картой курьеру.")
    r = operator.http.post(
        "/api/admin/support/upload",
        content=png_bytes(),
        params={"ticketId": number, "name": "карта.png"},
    )
    assert r.status_code == 200, r.text
    operator.close(number)
    sent = [s for s in bot_api.wait_sent(before + 3)[before:] if s["chat_id"] == str(chat)]
    assert [s["method"] for s in sent] == ["sendMessage", "sendPhoto", "sendMessage"]
    assert sent[0]["text"] == "Да, можно картой курьеру."
    assert sent[1]["file"]["name"] == "карта.png"
    assert Image.open(io.BytesIO(sent[1]["file"]["data"])).size == (32, 24)
    assert sent[2]["text"].startswith("✅ Тикет закрыт")
    # The token is in every Bot API URL: it is never in the server's log.
    assert "/bot<token>/" in server.log_path.read_text()
    assert TOKEN.split(":")[1] not in server.log_path.read_text()
    # Writing again after the close starts a new ticket.
    bot_api.customer_writes(chat, name, text="И ещё вопрос")
    wait_until(
        lambda: len([x for x in operator.tickets(status="all") if x["customer_name"] == name]) == 2,
        20,
        "a second ticket",
    )


def test_webhook_mode_checks_the_secret_and_stores_once(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    bot_api: BotApi,
    server: ServerProcess,
) -> None:
    server.stop()  # one bot, one consumer: the polling server makes way
    try:
        hooked = _server(
            request,
            tmp_path_factory,
            bot_api,
            "sqlite" if "sqlite" in request.node.name else "postgres",
            TRUSTDESK_TELEGRAM_WEBHOOK="true",
        )
        try:
            wait_until(lambda: bot_api.webhook is not None, 20, "setWebhook")
            hook = bot_api.webhook
            assert hook is not None
            assert hook["url"] == hooked.url + "/api/channels/telegram/webhook"
            assert len(hook["secret"]) >= 32
            op = OperatorClient(hooked.url, ADMIN_EMAIL, ADMIN_PASSWORD)
            chat = next(_chats)
            name = f"Пётр {chat}"
            update = bot_api.customer_writes(chat, name, text="Пришёл не тот цвет")
            number = chat_ticket(op, name)["ticketId"]
            # Telegram redelivers: stored once.
            r = httpx.post(
                hook["url"],
                json=update,
                headers={"X-Telegram-Bot-Api-Secret-Token": hook["secret"]},
            )
            assert r.status_code == 200
            # Without the secret, or with another: refused, nothing stored.
            forged = {**update, "update_id": update["update_id"] + 1000}
            forged["message"] = {**update["message"], "message_id": 999_999, "text": "подделка"}
            for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "guess"}):
                r = httpx.post(hook["url"], json=forged, headers=headers)
                assert r.status_code == 401 and r.json()["error"]["code"] == "telegram_unauthorized"
            assert [m["message"] for m in customer_messages(op, number, 1)] == [
                "Пришёл не тот цвет"
            ]
        finally:
            hooked.stop()
            bot_api.webhook = None
    finally:
        server.start()
