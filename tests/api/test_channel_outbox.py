"""Replies to channel customers survive a crash (channels/outbox.py): the outbox row is
written with the reply, so a server process killed with SIGKILL after the reply committed
but before it could be sent (the Bot API stand-in or the SMTP server refusing) sends it
once it runs again: exactly once, with one "not delivered" note however many retries. On
SQLite and PostgreSQL, real server processes, the Bot API stand-in and aiosmtpd+Dovecot."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from tests.api.test_email_inbox import SHOP, mail, unique_sender
from tests.api.test_telegram import chat_ticket
from tests.support.clients import OperatorClient
from tests.support.dovecot import Dovecot, dovecot_available
from tests.support.inspect_db import query
from tests.support.server import ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, ServerProcess
from tests.support.services import Postgres, wait_until
from tests.support.smtp import Mailbox
from tests.support.telegram_api import TOKEN, BotApi

IMAP_USER = SHOP  # the Dovecot mailbox (tests/conftest.py imap)

pytestmark = pytest.mark.skipif(not dovecot_available(), reason="dovecot-imapd not installed")

_n = itertools.count()
_chats = itertools.count(8_000_001)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    bot_api: BotApi,
    mailbox: Mailbox,
    imap: Dovecot,
) -> Iterator[ServerProcess]:
    url = None
    if request.param == "postgres":
        pg: Postgres = request.getfixturevalue("postgres")
        url = pg.create_database(f"outbox_{next(_n)}")
    srv = ServerProcess(
        tmp_path_factory.mktemp(f"outbox-{request.param}"),
        database_url=url,
        extra_env={
            "TRUSTDESK_TELEGRAM_BOT_TOKEN": TOKEN,
            "TRUSTDESK_TELEGRAM_API_URL": bot_api.url,
            "TRUSTDESK_TELEGRAM_POLL_SECONDS": "1",
            "TRUSTDESK_SMTP_HOST": "127.0.0.1",
            "TRUSTDESK_SMTP_PORT": str(mailbox.port),
            "TRUSTDESK_SMTP_STARTTLS": "false",
            "TRUSTDESK_SMTP_FROM": f"Trust Store <{SHOP}>",
            "TRUSTDESK_CHANNEL_RETRY_SECONDS": "1.5",
            "TRUSTDESK_CHANNEL_RETRY_MAX_SECONDS": "1.5",
            "TRUSTDESK_CHANNEL_MAX_ATTEMPTS": "40",
            **imap.env(poll_seconds=1.0),
        },
    )
    srv.create_operator(ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, role="admin")
    srv.start()
    yield srv
    srv.stop()


def outbox_row(server: ServerProcess, number: str, text: str) -> tuple[Any, ...]:
    rows = query(
        server,
        "SELECT o.status, o.attempts, o.noted FROM channel_outbox o"
        " JOIN support_messages m ON m.id = o.message_id"
        " JOIN tickets t ON t.id = o.ticket_id WHERE t.number = $1 AND m.message = $2",
        number,
        text,
    )
    assert len(rows) == 1, rows
    return rows[0]


def waiting_to_retry(server: ServerProcess, number: str, text: str, tries: int) -> bool:
    """At least `tries` failed, and the row is waiting for its next try (not claimed by an
    attempt in flight: a claim is not due again for CLAIM_SECONDS, a retry in 1.5 s)."""
    rows = query(
        server,
        "SELECT o.attempts, o.next_attempt_at, o.updated_at, o.last_error FROM channel_outbox o"
        " JOIN support_messages m ON m.id = o.message_id"
        " JOIN tickets t ON t.id = o.ticket_id WHERE t.number = $1 AND m.message = $2",
        number,
        text,
    )
    if not rows:
        return False
    attempts, due, updated, error = rows[0]
    if isinstance(due, str):  # (SQLite)
        due, updated = datetime.fromisoformat(due), datetime.fromisoformat(updated)
    return attempts >= tries and error is not None and (due - updated).total_seconds() < 10


def failed_notes(op: OperatorClient, number: str) -> int:
    return sum(
        1
        for m in op.open(number)["messages"]
        if (m.get("notice") or {}).get("code") == "channel_send_failed"
    )


def out_rows(server: ServerProcess, number: str) -> int:
    rows = query(
        server,
        "SELECT count(*) FROM channel_messages c JOIN tickets t ON t.id = c.ticket_id"
        " WHERE t.number = $1 AND c.direction = 'out'",
        number,
    )
    return int(rows[0][0])


def test_telegram_reply_committed_then_sigkill_is_sent_once_after_restart(
    server: ServerProcess, bot_api: BotApi
) -> None:
    chat = next(_chats)
    name = f"Пётр {chat}"
    bot_api.customer_writes(chat, name, text="Когда доставка?")
    op = OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    number = chat_ticket(op, name)["ticketId"]
    text = f"Завтра до обеда ({chat})"
    bot_api.refusing = True
    try:
        op.reply(number, text)  # committed; every send refused
        wait_until(lambda: waiting_to_retry(server, number, text, 3), 30, "three failed tries")
        assert failed_notes(op, number) == 1  # once, not per retry
        server.kill()  # SIGKILL, the reply still unsent
    finally:
        bot_api.refusing = False
    status, _, noted = outbox_row(server, number, text)
    assert status == "pending" and noted
    assert not [m for m in bot_api.sent if m.get("text") == text]
    server.start()

    def delivered() -> list[dict[str, Any]]:
        return [m for m in bot_api.sent if m.get("text") == text and m["chat_id"] == str(chat)]

    wait_until(lambda: bool(delivered()), 30, "the reply sent after the restart")
    wait_until(lambda: outbox_row(server, number, text)[0] == "sent", 10, "the row marked sent")
    op = OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    # and nothing more: another reply goes out after it, the first one not again
    op.reply(number, "Курьер позвонит заранее.")
    wait_until(
        lambda: any(m.get("text") == "Курьер позвонит заранее." for m in bot_api.sent),
        20,
        "the next reply",
    )
    wait_until(
        lambda: outbox_row(server, number, "Курьер позвонит заранее.")[0] == "sent", 10, "recorded"
    )
    assert len(delivered()) == 1
    assert out_rows(server, number) == 2
    assert failed_notes(op, number) == 1


def test_email_reply_survives_a_crash_while_smtp_refuses(
    server: ServerProcess, imap: Dovecot, mailbox: Mailbox
) -> None:
    who = unique_sender("inna")
    imap.append(mail(f"Инна <{who}>", "Размер", "Есть ли размер M?")[0])
    op = OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    found: list[str] = []

    def listed() -> bool:
        found[:] = [t["ticketId"] for t in op.tickets(status="all") if t["customer_email"] == who]
        return bool(found)

    wait_until(listed, 20, "the email ticket")
    number = found[0]
    text = f"Да, размер M есть ({who})"
    mailbox.refusing = True
    try:
        op.reply(number, text)
        wait_until(lambda: waiting_to_retry(server, number, text, 2), 30, "two failed tries")
        server.kill()
    finally:
        mailbox.refusing = False
    server.start()

    def mails() -> list[Any]:
        return [
            m
            for m in list(mailbox.messages)
            if m["To"] == who and text in m.get_payload(decode=True).decode()
        ]

    wait_until(lambda: bool(mails()), 30, "the mail sent after the restart")
    wait_until(lambda: outbox_row(server, number, text)[0] == "sent", 10, "the row marked sent")
    assert len(mails()) == 1
    # its Message-ID is stored, so the customer's answer threads onto the ticket
    sent_id = mails()[0]["Message-ID"].strip("<>")
    rows = query(server, "SELECT direction FROM channel_messages WHERE external_id = $1", sent_id)
    assert rows == [("out",)]
    assert failed_notes(OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD), number) == 1


def test_a_channel_that_is_not_configured_drops_its_rows(
    server: ServerProcess, bot_api: BotApi
) -> None:
    """Disconnected in the dashboard: replies on its tickets are not kept for later."""
    chat = next(_chats)
    name = f"Вера {chat}"
    bot_api.customer_writes(chat, name, text="Здравствуйте")
    op = OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    number = chat_ticket(op, name)["ticketId"]
    r = op.http.put("/api/admin/settings/channels", json={"telegram": {"bot_token": ""}})
    assert r.status_code == 200, r.text
    try:
        op.reply(number, "Ответ без бота")
        wait_until(
            lambda: outbox_row(server, number, "Ответ без бота")[0] == "failed", 20, "dropped"
        )
        assert not [m for m in bot_api.sent if m.get("text") == "Ответ без бота"]
    finally:
        op.http.put("/api/admin/settings/channels", json={"telegram": None})


def test_old_finished_rows_are_purged_pending_ones_kept(
    server: ServerProcess, bot_api: BotApi
) -> None:
    chat = next(_chats)
    name = f"Лев {chat}"
    bot_api.customer_writes(chat, name, text="Спасибо!")
    op = OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    number = chat_ticket(op, name)["ticketId"]
    text = f"Пожалуйста ({chat})"
    op.reply(number, text)
    wait_until(lambda: outbox_row(server, number, text)[0] == "sent", 20, "sent")
    if "TRUSTDESK_DATABASE_URL" not in server.env:  # SQLite: the stored text form
        query(server, "UPDATE channel_outbox SET updated_at = $1", "2020-01-01 00:00:00.000000")
    else:
        query(server, "UPDATE channel_outbox SET updated_at = now() - interval '8 days'")
    server.stop()
    server.start()  # a sender's first pass purges
    wait_until(
        lambda: not query(server, "SELECT id FROM channel_outbox WHERE status <> 'pending'"),
        20,
        "old rows purged",
    )
