"""The email channel's parsing: trimming, auto-reply and bounce recognition, our own mail."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from trustdesk.actions.email import reply_address
from trustdesk.channels.email_inbox import OWN_HEADER, html_text, parse, strip_reply
from trustdesk.config import Settings

SETTINGS = Settings(
    secret_key="unit-test-key",
    smtp_from="Trust Store <support@trust.store>",
    imap_user="inbox@trust.store",
    email_reply_domain="mail.trust.store",
)


def raw(headers: dict[str, str], body: str = "Текст письма") -> bytes:
    m = EmailMessage()
    m["From"] = "Ольга <olga@example.com>"
    m["To"] = "support@trust.store"
    m["Subject"] = "Вопрос"
    m["Message-ID"] = "<abc.1@example.com>"
    for k, v in headers.items():
        del m[k]
        m[k] = v
    m.set_content(body)
    return bytes(m)


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("Спасибо!\n\nOn Mon, 7 Dec 2026 at 10:00 Shop <s@x.ru> wrote:\n> old", "Спасибо!"),
        (
            "Да, подходит.\n\n7 дек. 2026 г., в 10:00, Trust Store <s@trust.store>:\n> x",
            "Да, подходит.",
        ),
        ("Хорошо\n\nИван Петров пишет:\n> старое", "Хорошо"),
        ("Ок\n-----Original Message-----\nFrom: a@b.c\nold", "Ок"),
        ("Ок\n\nFrom: Trust Store <support@trust.store>\nSent: today", "Ок"),
        ("Адрес: Казань\n\n-- \nОльга\n+7 900", "Адрес: Казань"),
        ("Привет\n\nОтправлено с iPhone", "Привет"),
        ("Привет\nSent from my Galaxy", "Привет"),
        ("> цитата\nответ под цитатой", "ответ под цитатой"),
        ("> только цитата", "> только цитата"),  # nothing else: kept whole
        ("строка -- с тире\nвторая", "строка -- с тире\nвторая"),
    ],
)
def test_strip_reply(text: str, kept: str) -> None:
    assert strip_reply(text) == kept


def test_html_only_mail_is_read_as_text() -> None:
    assert html_text("<html><head><style>p{}</style></head><p>Один</p><p>Два &amp; три</p>") == (
        "\nОдин\nДва & три"
    )


def test_a_plain_mail() -> None:
    got = parse(raw({"References": "<a@x> <b@x>", "In-Reply-To": "<b@x>"}), SETTINGS)
    assert got is not None and not got.automatic
    assert (got.external_id, got.address, got.name, got.subject) == (
        "abc.1@example.com",
        "olga@example.com",
        "Ольга",
        "Вопрос",
    )
    assert got.refs == ["b@x", "a@x"]  # the newest first, once each
    assert got.ticket_number is None


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto-Submitted": "auto-replied"},
        {"Auto-Submitted": "auto-generated"},
        {"Precedence": "bulk"},
        {"Precedence": "junk"},
        {"Precedence": "list"},
        {"X-Autoreply": "yes"},
        {"X-Autorespond": "yes"},
        {"X-Auto-Response-Suppress": "All"},
        {"List-Id": "<news.shop.example>"},
        {"Return-Path": "<>"},
        {"From": "MAILER-DAEMON@mx.example.com"},
        {"From": "Mail System <postmaster@example.com>"},
        {"From": "not an address"},
    ],
)
def test_automatic_mail_is_recognised(headers: dict[str, str]) -> None:
    got = parse(raw(headers), SETTINGS)
    assert got is not None and got.automatic


def test_a_person_who_says_no_to_auto_submitted_is_a_person() -> None:
    got = parse(raw({"Auto-Submitted": "no"}), SETTINGS)
    assert got is not None and not got.automatic


@pytest.mark.parametrize(
    "headers",
    [
        {"From": "Trust Store <support@trust.store>"},
        {"From": "inbox@trust.store"},
        {OWN_HEADER: "TKT-1-ABCD"},
    ],
)
def test_our_own_mail_is_never_read(headers: dict[str, str]) -> None:
    assert parse(raw(headers), SETTINGS) is None


def test_the_signed_reply_address_names_its_ticket_and_a_forged_one_nothing() -> None:
    good = reply_address(SETTINGS, "TKT-1796600000-ABCD")
    assert parse(raw({"To": good}), SETTINGS).ticket_number == "TKT-1796600000-ABCD"  # type: ignore[union-attr]
    forged = "reply+TKT-1796600000-ABCD.00000000000000000000@mail.trust.store"
    assert parse(raw({"To": forged}), SETTINGS).ticket_number is None  # type: ignore[union-attr]


def test_a_mail_without_message_id_gets_a_stable_key() -> None:
    m = raw({})
    m = m.replace(b"Message-ID: <abc.1@example.com>\n", b"")
    a, b = parse(m, SETTINGS), parse(m, SETTINGS)
    assert a is not None and b is not None
    assert a.external_id.startswith("sha256:") and a.external_id == b.external_id
