"""No missed chat (actions/escalation.py): the ladder push → email → Telegram with a short
N (a "minute" is TRUSTDESK_ESCALATE_UNIT_SECONDS here), the waiting list, the report's
missed / answered-late counts, the opt-ins and Telegram linking, on SQLite and PostgreSQL,
against the local stand-ins: the push receiver, the SMTP capture and the Bot API."""

from __future__ import annotations

import base64
import itertools
import json
import os
import threading
import time
from collections.abc import Iterator
from email.message import Message as EmailMessage
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import http_ece
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.clients import OperatorClient, VisitorClient
from tests.support.inspect_db import query
from tests.support.server import ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, ServerProcess
from tests.support.services import Postgres, Redis, wait_until
from tests.support.smtp import Mailbox
from tests.support.telegram_api import TOKEN, BotApi

_n = itertools.count()
_chats = itertools.count(7_000_001)
UNIT = 0.5  # seconds per "minute"
N = 2  # escalate after N "minutes": push at 1 s, email at 2 s, Telegram at 3 s


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class PushService:
    """A local push service that records and decrypts (as a browser would)."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)
        self.received: list[tuple[float, dict[str, Any]]] = []
        self.cond = threading.Condition()
        svc = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                plain = http_ece.decrypt(
                    body, private_key=svc.key, auth_secret=svc.auth, version="aes128gcm"
                )
                with svc.cond:
                    svc.received.append((time.monotonic(), json.loads(plain)))
                    svc.cond.notify_all()
                self.send_response(201)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/push/{os.urandom(4).hex()}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def keys(self) -> dict[str, str]:
        raw = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {"p256dh": b64(raw), "auth": b64(self.auth)}

    def wait(self, match: Any, timeout: float = 20) -> tuple[float, dict[str, Any]]:
        with self.cond:
            assert self.cond.wait_for(lambda: any(match(p) for _, p in self.received), timeout)
            return next((t, p) for t, p in self.received if match(p))

    def count(self, match: Any) -> int:
        with self.cond:
            return sum(1 for _, p in self.received if match(p))


@pytest.fixture(scope="module")
def push_service() -> Iterator[PushService]:
    svc = PushService()
    yield svc
    svc.httpd.shutdown()


def _env(bot_api: BotApi, mailbox: Mailbox) -> dict[str, str]:
    return {
        "TRUSTDESK_TELEGRAM_BOT_TOKEN": TOKEN,
        "TRUSTDESK_TELEGRAM_API_URL": bot_api.url,
        "TRUSTDESK_TELEGRAM_POLL_SECONDS": "1",
        "TRUSTDESK_SMTP_HOST": "127.0.0.1",
        "TRUSTDESK_SMTP_PORT": str(mailbox.port),
        "TRUSTDESK_SMTP_STARTTLS": "false",
        "TRUSTDESK_ESCALATE_UNIT_SECONDS": str(UNIT),
        "TRUSTDESK_ESCALATE_INTERVAL_SECONDS": "0.2",
    }


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    bot_api: BotApi,
    mailbox: Mailbox,
) -> Iterator[ServerProcess]:
    url = None
    if request.param == "postgres":
        pg: Postgres = request.getfixturevalue("postgres")
        url = pg.create_database(f"escalation_{next(_n)}")
    srv = ServerProcess(
        tmp_path_factory.mktemp(f"escalation-{request.param}"),
        database_url=url,
        extra_env=_env(bot_api, mailbox),
    )
    srv.create_operator(ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, role="admin")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def operator(server: ServerProcess) -> OperatorClient:
    op = OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    r = op.http.put("/api/admin/settings/routing", json={"escalate_after_minutes": N})
    assert r.status_code == 200 and r.json()["settings"]["escalate_after_minutes"] == N
    return op


def _link_telegram(op: OperatorClient, bot_api: BotApi) -> int:
    r = op.post("/api/admin/account/alerts/telegram-link")
    assert r.status_code == 200, r.text
    link = r.json()
    assert link["url"] == f"https://t.me/trust_store_bot?start={link['code']}"
    assert link["command"] == f"/start {link['code']}"
    chat = next(_chats)
    before = len(bot_api.sent)
    bot_api.customer_writes(chat, "Артём", text=link["command"])
    sent = bot_api.wait_sent(before + 1)
    answer = next(m for m in sent[before:] if m.get("chat_id") == str(chat))
    assert answer["text"].startswith("Готово")
    wait_until(
        lambda: op.http.get("/api/admin/account/alerts").json()["telegram_linked"],
        10,
        "the chat linked",
    )
    return chat


def _emails_about(box: Mailbox, number: str) -> list[EmailMessage]:
    return [m for m in box.messages if number in str(m["Subject"])]


def _waits(server: ServerProcess, number: str) -> list[tuple[Any, ...]]:
    return query(
        server,
        "SELECT s.step, s.status FROM escalation_sends s JOIN ticket_waits w ON w.id = s.wait_id"
        " JOIN tickets t ON t.id = w.ticket_id WHERE t.number = $1 ORDER BY s.step",
        number,
    )


def test_the_ladder_push_then_email_then_telegram_once_each(
    server: ServerProcess,
    operator: OperatorClient,
    bot_api: BotApi,
    mailbox: Mailbox,
    push_service: PushService,
) -> None:
    sub = {"endpoint": push_service.url, "keys": push_service.keys()}
    r = operator.post("/api/admin/push/subscribe", json=sub)
    assert r.status_code == 200, r.text
    chat = _link_telegram(operator, bot_api)
    r = operator.http.put("/api/admin/account/alerts", json={"email": True})
    assert r.status_code == 200, r.text
    prefs = r.json()
    assert prefs["push"] and prefs["email"] and prefs["telegram"] and prefs["telegram_linked"]
    assert prefs["available"] == {"push": True, "email": True, "telegram": True}

    customer = VisitorClient(server.url)
    start = time.monotonic()
    number = customer.send("Где мой заказ? Жду уже неделю")["ticketId"]
    # Waiting at once, in the waiting list.
    waiting = operator.tickets(status="waiting")
    assert number in [t["ticketId"] for t in waiting]
    assert next(t for t in waiting if t["ticketId"] == number)["waiting_since"]

    def escalated(p: dict[str, Any]) -> bool:
        return p.get("ticketId") == number and "ждёт ответа" in p.get("title", "")

    pushed_at, note = push_service.wait(escalated)
    assert pushed_at - start >= N * UNIT
    assert note["body"] == "Где мой заказ? Жду уже неделю"
    wait_until(lambda: _emails_about(mailbox, number), 20, "the escalation email")
    mailed_at = time.monotonic()
    box = _emails_about(mailbox, number)
    assert box[0]["To"] == ADMIN_EMAIL
    assert mailed_at - start >= 2 * N * UNIT

    def told() -> list[dict[str, Any]]:
        return [
            m for m in bot_api.sent if m.get("chat_id") == str(chat) and number in m.get("text", "")
        ]

    wait_until(told, 20, "the Telegram step")
    assert time.monotonic() - start >= 3 * N * UNIT
    assert "Где мой заказ?" in told()[0]["text"]
    # Each step once: one row per step, sent; the customer message's own push aside.
    wait_until(lambda: len(_waits(server, number)) == 3, 10, "three steps recorded")
    assert _waits(server, number) == [("email", "sent"), ("push", "sent"), ("telegram", "sent")]
    assert push_service.count(escalated) == 1
    assert len(_emails_about(mailbox, number)) == 1 and len(told()) == 1
    # The operator's reply ends the wait.
    operator.reply(number, "Уже едет!")
    assert number not in [t["ticketId"] for t in operator.tickets(status="waiting")]
    summary = next(t for t in operator.tickets(status="open") if t["ticketId"] == number)
    assert summary["waiting_since"] is None


def test_a_reply_stops_the_ladder_and_a_note_does_not(
    server: ServerProcess, operator: OperatorClient, mailbox: Mailbox
) -> None:
    answered = VisitorClient(server.url).send("Вопрос про доставку")["ticketId"]
    operator.reply(answered, "Отвечаю сразу")
    noted = VisitorClient(server.url).send("Вопрос про оплату")["ticketId"]
    r = operator.post("/api/admin/support/note", json={"ticketId": noted, "message": "смотрю"})
    assert r.status_code == 200, r.text
    # The noted ticket (which started later) escalates; the answered one never did.
    wait_until(lambda: _emails_about(mailbox, noted), 20, "the noted ticket's email")
    assert _waits(server, answered) == []
    assert query(
        server,
        "SELECT count(*) FROM ticket_waits w JOIN tickets t ON t.id = w.ticket_id"
        " WHERE t.number = $1",
        answered,
    ) == [(0,)]
    operator.reply(noted, "Готово")


def test_waiting_list_longest_first(server: ServerProcess, operator: OperatorClient) -> None:
    first = VisitorClient(server.url).send("первый")["ticketId"]
    c2 = VisitorClient(server.url)
    second = c2.send("второй")["ticketId"]
    c2.send("второй ещё раз")  # the wait keeps its start
    listed = [t["ticketId"] for t in operator.tickets(status="waiting")]
    assert listed.index(first) < listed.index(second)
    operator.reply(first, "ответ")
    listed = [t["ticketId"] for t in operator.tickets(status="waiting")]
    assert first not in listed and second in listed
    operator.close(second)
    assert second not in [t["ticketId"] for t in operator.tickets(status="waiting")]


def test_report_counts_missed_and_answered_late(
    server: ServerProcess, operator: OperatorClient
) -> None:
    def counts() -> tuple[int, int]:
        r = operator.http.get("/api/admin/report", params={"days": 1}).json()
        assert r["escalate_after_minutes"] == N
        return r["missed"], r["answered_late"]

    missed0, late0 = counts()
    quick = VisitorClient(server.url).send("быстрый вопрос")["ticketId"]
    operator.reply(quick, "быстрый ответ")  # answered in time: neither
    late = VisitorClient(server.url).send("ответят поздно")["ticketId"]
    never = VisitorClient(server.url).send("не ответят")["ticketId"]
    wait_until(lambda: counts()[0] >= missed0 + 2, 20, "two missed")
    operator.reply(late, "простите за ожидание")
    assert counts() == (missed0 + 2, late0 + 1)
    operator.close(never)
    assert counts() == (missed0 + 2, late0 + 1)


def test_opt_ins_are_checked(server: ServerProcess, operator: OperatorClient) -> None:
    r = operator.http.delete("/api/admin/account/alerts/telegram-link")
    assert r.status_code == 200 and r.json()["telegram_linked"] is False
    assert r.json()["telegram"] is False
    r = operator.http.put("/api/admin/account/alerts", json={"telegram": True})
    assert r.status_code == 422 and r.json()["error"]["code"] == "telegram_not_linked"
    r = operator.http.put("/api/admin/account/alerts", json={"sound": "loud"})
    assert r.status_code == 422 and "error" in r.json()
    r = operator.http.put("/api/admin/settings/routing", json={"escalate_after_minutes": 241})
    assert r.status_code == 422 and r.json()["error"]["field"] == "escalate_after_minutes"
    r = operator.http.put("/api/admin/account/alerts", json={"sound": False})
    assert r.status_code == 200 and r.json()["sound"] is False
    r = operator.post("/api/admin/account/push-test", json={"endpoint": "https://x.example/1"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "push_not_subscribed"
    operator.http.put("/api/admin/account/alerts", json={"sound": True})


def test_start_codes_expired_and_unknown(
    server: ServerProcess, operator: OperatorClient, bot_api: BotApi
) -> None:
    link = operator.post("/api/admin/account/alerts/telegram-link").json()
    # (expired: valid until the moment it was made)
    query(server, "UPDATE operator_alerts SET link_code_expires_at = updated_at")
    chat = next(_chats)
    before = len(bot_api.sent)
    bot_api.customer_writes(chat, "Кто-то", text=link["command"])
    sent = bot_api.wait_sent(before + 1)
    assert next(m for m in sent[before:] if m["chat_id"] == str(chat))["text"].startswith(
        "Код не подошёл"
    )
    # The same code again is unknown now: the shop's own deep link, a customer's message.
    other = next(_chats)
    bot_api.customer_writes(other, f"Покупатель {other}", text="/start promo_winter_2026")

    def ticket() -> list[dict[str, Any]]:
        return [
            t for t in operator.tickets(status="all") if t["customer_name"] == f"Покупатель {other}"
        ]

    wait_until(lambda: bool(ticket()), 20, "the customer's ticket")
    # (updates are handled in order: the expired code's chat never got a ticket)
    assert not [t for t in operator.tickets(status="all") if t["customer_name"] == "Кто-то"]
    prefs = operator.http.get("/api/admin/account/alerts").json()
    assert prefs["telegram_linked"] is False


def test_push_test_reaches_this_device(operator: OperatorClient, push_service: PushService) -> None:
    sub = {"endpoint": push_service.url, "keys": push_service.keys()}
    r = operator.post("/api/admin/push/subscribe", json=sub)
    assert r.status_code == 200, r.text
    r = operator.post("/api/admin/account/push-test", json={"endpoint": push_service.url})
    assert r.status_code == 200 and r.json()["sent"] is True, r.text
    nonce = r.json()["nonce"]
    _, note = push_service.wait(lambda p: p.get("test") == nonce)
    assert note["body"].startswith("Проверка push")


# ---------------------------------------------------------------- two processes, one send


def test_two_processes_send_each_step_once(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    bot_api: BotApi,
    mailbox: Mailbox,
    redis_server: Redis,
) -> None:
    pg: Postgres = request.getfixturevalue("postgres")
    url = pg.create_database(f"escalation2_{next(_n)}")
    env = {**_env(bot_api, mailbox), "TRUSTDESK_ESCALATE_INTERVAL_SECONDS": "0.05"}
    redis_url = redis_server.url
    a = ServerProcess(tmp_path_factory.mktemp("esc-a"), database_url=url, redis_url=redis_url,
                      extra_env=env)  # fmt: skip
    a.create_operator(ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, role="admin")
    a.start()
    b = ServerProcess(tmp_path_factory.mktemp("esc-b"), database_url=url, redis_url=redis_url,
                      extra_env=env).start()  # fmt: skip
    try:
        op = OperatorClient(a.url, ADMIN_EMAIL, ADMIN_PASSWORD)
        r = op.http.put("/api/admin/settings/routing", json={"escalate_after_minutes": 1})
        assert r.status_code == 200
        op_b = OperatorClient(b.url, ADMIN_EMAIL, ADMIN_PASSWORD)
        wait_until(
            lambda: (
                op_b.http.get("/api/admin/account/alerts").json()["escalate_after_minutes"] == 1
            ),
            10,
            "b follows the setting",
        )
        chat = _link_telegram(op, bot_api)
        assert op.http.put("/api/admin/account/alerts", json={"email": True}).status_code == 200
        numbers = [VisitorClient(a.url).send(f"вопрос {i}")["ticketId"] for i in range(5)]

        def told(number: str) -> list[dict[str, Any]]:
            return [
                m
                for m in bot_api.sent
                if m.get("chat_id") == str(chat) and number in m.get("text", "")
            ]

        wait_until(lambda: all(told(n) for n in numbers), 30, "every ticket's Telegram step")
        for number in numbers:
            assert len(told(number)) == 1
            assert len(_emails_about(mailbox, number)) == 1
            assert _waits(a, number) == [("email", "sent"), ("telegram", "sent")]
    finally:
        b.stop()
        a.stop()
