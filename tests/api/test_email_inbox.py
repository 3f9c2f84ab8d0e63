"""The email inbox channel against real servers: Dovecot (IMAP, mail delivered by APPEND)
and aiosmtpd (the operators' replies), on SQLite and on PostgreSQL."""

from __future__ import annotations

import io
import itertools
import time
from collections.abc import Iterator
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

import pytest
from PIL import Image

from tests.support.clients import OperatorClient
from tests.support.dovecot import Dovecot, dovecot_available
from tests.support.server import ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, ServerProcess
from tests.support.services import Postgres, wait_until
from tests.support.smtp import Mailbox

pytestmark = pytest.mark.skipif(not dovecot_available(), reason="dovecot-imapd not installed")

SHOP = "support@trust.store"
IMAP_USER = SHOP  # the Dovecot mailbox (tests/conftest.py imap)
_n = itertools.count()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    mailbox: Mailbox,
    imap: Dovecot,
) -> Iterator[ServerProcess]:
    url = None
    if request.param == "postgres":
        pg: Postgres = request.getfixturevalue("postgres")
        url = pg.create_database(f"inbox_{next(_n)}")
    srv = ServerProcess(
        tmp_path_factory.mktemp(f"inbox-{request.param}"),
        database_url=url,
        extra_env={
            "TRUSTDESK_SMTP_HOST": "127.0.0.1",
            "TRUSTDESK_SMTP_PORT": str(mailbox.port),
            "TRUSTDESK_SMTP_STARTTLS": "false",
            "TRUSTDESK_SMTP_FROM": f"Trust Store <{SHOP}>",
            "TRUSTDESK_EMAIL_REPLY_DOMAIN": "mail.trust.store",
            **imap.env(poll_seconds=1.0),
        },
    )
    srv.create_operator(ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, role="admin")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def operator(server: ServerProcess) -> OperatorClient:
    return OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), "green").save(out, "PNG")
    return out.getvalue()


def mail(
    sender: str,
    subject: str,
    body: str,
    *,
    to: str = SHOP,
    reply_to: str | None = None,
    references: list[str] | None = None,
    headers: dict[str, str] | None = None,
    files: list[tuple[str, bytes, str]] | None = None,
) -> tuple[bytes, str]:
    """A mail as a customer's client writes it; returns (raw bytes, its Message-ID)."""
    m = EmailMessage()
    m["From"] = sender
    m["To"] = to
    m["Subject"] = subject
    m["Date"] = format_datetime(__import__("datetime").datetime.now().astimezone())
    mid = make_msgid(domain="example.com")
    m["Message-ID"] = mid
    if reply_to:
        m["In-Reply-To"] = reply_to
    if references:
        m["References"] = " ".join(references)
    for k, v in (headers or {}).items():
        m[k] = v
    m.set_content(body)
    for name, data, mime in files or []:
        main, _, sub = mime.partition("/")
        m.add_attachment(data, maintype=main, subtype=sub, filename=name)
    return bytes(m), mid


def unique_sender(name: str = "anna") -> str:
    return f"{name}.{next(_n)}.{time.time_ns()}@example.com"


def ticket_of(operator: OperatorClient, email: str, timeout: float = 20) -> dict[str, Any]:
    """Wait until the customer's email ticket is in the list."""
    found: list[dict[str, Any]] = []

    def listed() -> bool:
        found[:] = [t for t in operator.tickets(status="all") if t["customer_email"] == email]
        return bool(found)

    wait_until(listed, timeout, f"a ticket from {email}")
    return found[0]


def customer_texts(operator: OperatorClient, number: str) -> list[str]:
    msgs = operator.open(number)["messages"]
    return [m["message"] for m in msgs if m["sender_type"] == "customer"]


def wait_texts(operator: OperatorClient, number: str, count: int) -> list[str]:
    wait_until(
        lambda: len(customer_texts(operator, number)) >= count, 20, f"{count} messages on {number}"
    )
    return customer_texts(operator, number)


def all_tickets_of(operator: OperatorClient, email: str) -> list[dict[str, Any]]:
    return [t for t in operator.tickets(status="all") if t["customer_email"] == email]


def test_new_thread_becomes_an_email_ticket(imap: Dovecot, operator: OperatorClient) -> None:
    who = unique_sender()
    raw, _ = mail(
        f"Анна Смирнова <{who}>",
        "Где мой заказ 1042?",
        "Здравствуйте! Заказ 1042 не пришёл.\n\n-- \nАнна Смирнова\n+7 900 000-00-00\n",
    )
    imap.append(raw)
    t = ticket_of(operator, who)
    assert t["channel"] == "email"
    assert t["customer_name"] == "Анна Смирнова"
    history = operator.open(t["ticketId"])["messages"]
    # No widget greeting on an email ticket (only the customer's mail, then the operator's
    # "joined" notice); the subject heads the first message; the signature is trimmed.
    assert [m["sender_type"] for m in history] == ["customer", "system"]
    assert history[0]["message"] == "Где мой заказ 1042?\n\nЗдравствуйте! Заказ 1042 не пришёл."
    # The mail is marked read in the mailbox for whoever looks at it there.
    wait_until(lambda: imap.seen() >= 1, 10, "the mail flagged \\Seen")


def test_replies_thread_into_the_same_ticket_and_out_by_smtp(
    imap: Dovecot, operator: OperatorClient, mailbox: Mailbox
) -> None:
    who = unique_sender("boris")
    first, first_id = mail(who, "Возврат", "Хочу вернуть наушники.")
    imap.append(first)
    number = ticket_of(operator, who)["ticketId"]
    # The customer writes again in the same thread, quoting: the quote is trimmed.
    again, again_id = mail(
        who,
        "Re: Возврат",
        "Чек приложу позже.\n\nOn Mon, 7 Dec 2026 at 10:00, Boris <b@example.com> wrote:\n"
        "> Хочу вернуть наушники.\n",
        reply_to=first_id,
        references=[first_id],
    )
    imap.append(again)
    assert wait_texts(operator, number, 2)[1] == "Чек приложу позже."
    # The operator answers: it goes out by SMTP, threaded on the customer's mails.
    before = len(mailbox.messages)
    operator.reply(number, "Оформили возврат, курьер приедет завтра.")
    out = next(m for m in mailbox.wait_for(before + 1)[before:] if m["To"] == who)
    assert out["In-Reply-To"] == again_id
    assert first_id in out["References"] and again_id in out["References"]
    assert str(make_header(decode_header(out["Subject"]))) == "Re: Возврат"
    assert out["Reply-To"].startswith(f"reply+{number}.")
    assert out["X-TrustDesk-Ticket"] == number
    assert "Оформили возврат" in out.get_payload(decode=True).decode()
    # The customer's answer to the operator's mail threads by its Message-ID alone...
    answer, _ = mail(who, "Re: Возврат", "Спасибо!", reply_to=out["Message-ID"])
    imap.append(answer)
    assert wait_texts(operator, number, 3)[2] == "Спасибо!"
    # ...or by the ticket's reply address, when the client dropped the headers.
    plain, _ = mail(who, "ещё вопрос", "А деньги когда?", to=out["Reply-To"])
    imap.append(plain)
    assert wait_texts(operator, number, 4)[3] == "А деньги когда?"
    assert len(all_tickets_of(operator, who)) == 1
    # A closed ticket reopens when the customer writes in its thread.
    operator.close(number)
    late, _ = mail(who, "Re: Возврат", "Курьер не приехал.", reply_to=out["Message-ID"])
    imap.append(late)
    assert wait_texts(operator, number, 5)[4] == "Курьер не приехал."
    assert operator.open(number)["ticket"]["status"] == "open"


def test_auto_replies_bounces_and_own_mail_are_not_tickets(
    imap: Dovecot, operator: OperatorClient, mailbox: Mailbox
) -> None:
    who = unique_sender("vera")
    first, first_id = mail(who, "Размер", "Какой размер у рюкзака?")
    imap.append(first)
    number = ticket_of(operator, who)["ticketId"]
    before = len(mailbox.messages)
    operator.reply(number, "45 × 30 × 15 см.")
    out = next(m for m in mailbox.wait_for(before + 1)[before:] if m["To"] == who)
    sent_after_reply = len(mailbox.messages)
    # The customer's out-of-office answer to it (RFC 3834), in the same thread.
    ooo, _ = mail(
        who,
        "Автоответ: Размер",
        "Я в отпуске до понедельника.",
        reply_to=out["Message-ID"],
        headers={"Auto-Submitted": "auto-replied"},
    )
    # A bounce of it from the mailer daemon.
    bounce, _ = mail(
        "Mail Delivery System <MAILER-DAEMON@mx.example.com>",
        "Undelivered Mail Returned to Sender",
        "This is the mail system. Your message could not be delivered.",
        references=[out["Message-ID"]],
    )
    # New threads that are automatic: bulk mail, an X-Autoreply, and our own mail.
    strangers = [unique_sender("news"), unique_sender("robot")]
    bulk, _ = mail(strangers[0], "Скидки!", "Только сегодня", headers={"Precedence": "bulk"})
    robot, _ = mail(strangers[1], "Re: ваш вопрос", "Автоответ", headers={"X-Autoreply": "yes"})
    own, _ = mail(f"Trust Store <{SHOP}>", "Копия", "Наше же письмо", to=who)
    for raw in (ooo, bounce, bulk, robot, own):
        imap.append(raw)
    # A normal mail after them: once it is in, every one before it has been read (UID order).
    marker_from = unique_sender("marker")
    marker, _ = mail(marker_from, "Вопрос", "Есть ли доставка в Казань?")
    imap.append(marker)
    ticket_of(operator, marker_from)
    # The auto-reply and the bounce are notes for the operators on the ticket, not
    # customer messages; the automatic new threads made no ticket; nothing was answered.
    history = operator.open(number)["messages"]
    assert [m["message"] for m in history if m["sender_type"] == "customer"] == [
        "Размер\n\nКакой размер у рюкзака?"
    ]
    notes = [m for m in history if m["kind"] == "note" and m["sender_type"] == "system"]
    auto_notes = [m for m in notes if (m.get("notice") or {}).get("code") == "channel_automatic"]
    assert len(auto_notes) == 2
    assert all(not all_tickets_of(operator, s) for s in strangers)
    assert [t["ticketId"] for t in all_tickets_of(operator, who)] == [number]
    assert len(mailbox.messages) == sent_after_reply


def test_attachments_go_through_the_upload_checks(imap: Dovecot, operator: OperatorClient) -> None:
    who = unique_sender("gleb")
    raw, _ = mail(
        who,
        "Брак",
        "Фото коробки во вложении.",
        files=[
            ("коробка.png", png_bytes(), "image/png"),
            ("virus.exe", b"MZ\x90\x00" + b"\x00" * 200, "application/octet-stream"),
        ],
    )
    imap.append(raw)
    number = ticket_of(operator, who)["ticketId"]
    wait_texts(operator, number, 2)
    history = operator.open(number)["messages"]
    text, photo = [m for m in history if m["sender_type"] == "customer"]
    assert photo["kind"] == "file"
    att = photo["attachment"]
    assert (att["mime"], att["kind"], att["name"]) == ("image/png", "image", "коробка.png")
    assert (att["width"], att["height"]) == (40, 30)
    got = operator.http.get(f"/api/admin/files/{att['id']}")
    assert got.status_code == 200 and got.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(got.content)).size == (40, 30)
    # The file the checks refused is named in the text, not stored.
    assert text["message"].startswith("Брак\n\nФото коробки во вложении.")
    assert "Вложения не приняты: virus.exe" in text["message"]


def test_outages_and_restarts_store_nothing_twice_and_lose_nothing(
    imap: Dovecot, server: ServerProcess, operator: OperatorClient
) -> None:
    who = unique_sender("dina")
    raw, first_id = mail(who, "Доставка", "Первое письмо")
    imap.append(raw)
    number = ticket_of(operator, who)["ticketId"]
    # IMAP goes down and comes back: the consumer reconnects and reads what came meanwhile.
    imap.stop()
    imap.start()
    second, second_id = mail(who, "Re: Доставка", "Второе письмо", reply_to=first_id)
    imap.append(second)
    assert wait_texts(operator, number, 2) == ["Доставка\n\nПервое письмо", "Второе письмо"]
    # TrustDesk is down while a mail arrives: read once it is back.
    server.stop()
    third, _ = mail(who, "Re: Доставка", "Третье письмо", reply_to=second_id)
    imap.append(third)
    server.start()
    op = OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert wait_texts(op, number, 3)[2] == "Третье письмо"
    # The mailbox is rebuilt (a new UIDVALIDITY: every UID changes): everything is read
    # again, and the Message-IDs stored keep all of it from being stored twice.
    validity = imap.uidvalidity()
    imap.stop()
    maildir = imap.root / "mail" / SHOP
    for f in maildir.glob("dovecot*"):
        f.unlink()
    imap.start()
    assert imap.uidvalidity() != validity
    fourth, _ = mail(who, "Re: Доставка", "Четвёртое письмо", reply_to=second_id)
    imap.append(fourth)
    texts = wait_texts(op, number, 4)
    assert texts == [
        "Доставка\n\nПервое письмо",
        "Второе письмо",
        "Третье письмо",
        "Четвёртое письмо",
    ]
    # And every other ticket of this module still has each of its messages once.
    for t in op.tickets(status="all"):
        msgs = op.open(t["ticketId"])["messages"]
        keys = [m["client_msg_id"] for m in msgs if m["client_msg_id"]]
        assert len(keys) == len(set(keys))
    assert len(all_tickets_of(op, who)) == 1


def test_one_process_reads_the_mailbox(
    imap: Dovecot, server: ServerProcess, operator: OperatorClient
) -> None:
    """A second server process on the same database: the lease lets one of them read the
    mailbox, so each mail is read (and stored) by one process, once."""
    other = ServerProcess(server.data_dir / "second")
    other.env = {
        **server.env,
        "TRUSTDESK_PUBLIC_URL": f"http://127.0.0.1:{other.port}",
        "TRUSTDESK_ALLOWED_ORIGINS": f"http://localhost:{other.port}",
    }
    logs = [server.log_path, other.log_path]
    other.start()
    marks = [p.stat().st_size for p in logs]
    try:
        senders = [unique_sender(f"multi{i}") for i in range(4)]
        for who in senders:
            imap.append(mail(who, "Вопрос", f"Письмо от {who}")[0])
        for who in senders:
            number = ticket_of(operator, who)["ticketId"]
            assert customer_texts(operator, number) == [f"Вопрос\n\nПисьмо от {who}"]
    finally:
        other.stop()

    def read(path: Any, mark: int) -> int:
        """Mails this process read since the mark (stored, duplicate or otherwise)."""
        with open(path, "rb") as f:
            f.seek(mark)
            new = f.read().decode(errors="replace")
        return sum(1 for line in new.splitlines() if "email inbox: message" in line)

    counts = sorted(read(p, m) for p, m in zip(logs, marks, strict=True))
    assert counts == [0, 4]


def test_a_reply_that_cannot_be_sent_is_noted_for_the_operators(
    imap: Dovecot, operator: OperatorClient, mailbox: Mailbox
) -> None:
    who = unique_sender("egor")
    imap.append(mail(who, "Гарантия", "Сколько гарантия на часы?")[0])
    number = ticket_of(operator, who)["ticketId"]
    mailbox.refusing = True  # the SMTP server fails every mail
    try:
        operator.reply(number, "Год.")

        def noted() -> bool:
            history = operator.open(number)["messages"]
            return any(
                (m.get("notice") or {}).get("code") == "channel_send_failed" for m in history
            )

        wait_until(noted, 20, "the failed send noted on the ticket")
    finally:
        mailbox.refusing = False
    note = next(
        m
        for m in operator.open(number)["messages"]
        if (m.get("notice") or {}).get("code") == "channel_send_failed"
    )
    assert note["kind"] == "note" and note["message"].startswith("⚠ Ответ не доставлен (email)")
