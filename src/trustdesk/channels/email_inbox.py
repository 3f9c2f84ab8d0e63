"""The email inbox channel: an IMAP mailbox whose threads are tickets.

Inbound: one consumer across all server processes (a lease in channel_state) logs in to
TRUSTDESK_IMAP_HOST, selects TRUSTDESK_IMAP_FOLDER and reads every message after the last
UID it stored (the cursor: UIDVALIDITY and last UID, in channel_state, moved only after the
message's transaction committed). It then waits with IDLE (renewed every
imap_poll_seconds) or, without IDLE, polls. Each message is parsed (`parse`): our own mail
is skipped, auto-replies and bounces are marked automatic (never a ticket, never answered),
quoted history and signatures are trimmed, and the rest goes to channels.inbound.receive,
which dedupes by Message-ID: a restart, an outage or a new UIDVALIDITY stores nothing twice,
and nothing is skipped, because the cursor never passes a message that was not stored.

Outbound: an operator's reply on an email ticket goes out by SMTP (the TRUSTDESK_SMTP_*
settings) with In-Reply-To and References of the thread, its own Message-ID (stored, so a
reply to it threads back), the ticket's signed reply address as Reply-To, and the file if
it is one. TrustDesk never answers a message by itself, so no mail loop can start here.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import html.parser
import logging
import re
import smtplib
import ssl
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import getaddresses, make_msgid, parseaddr
from typing import Any

import aioimaplib  # type: ignore[import-untyped]
from sqlalchemy import select

from trustdesk.actions import attachments
from trustdesk.actions import email as mail
from trustdesk.actions.customers import EMAIL_RE
from trustdesk.actions.runtime import Runtime
from trustdesk.channels.base import Inbound, InFile, Lease, Sent, Stop
from trustdesk.channels.inbound import receive
from trustdesk.config import Settings
from trustdesk.store.db import storage_unavailable
from trustdesk.store.models import ChannelMessage, Ticket, Visitor

log = logging.getLogger(__name__)

NAME = "email"
OWN_HEADER = "X-TrustDesk-Ticket"  # on every mail we send: never read back as a customer's

# ---------------------------------------------------------------- parsing (pure)

_MSGID = re.compile(r"<([^<>\s]{1,250})>")
_BOUNCE_SENDERS = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mailerdaemon)@", re.I)
# A line that starts the quoted original (clients' "On … wrote:" in English and Russian).
_QUOTE_HEADER = [
    re.compile(r"^\s*On\s.{1,250}\swrote:\s*$", re.I),
    re.compile(r"^.{0,250}(пишет|написал|написала|написал\(а\))\s*:\s*$", re.I),
    re.compile(r"^.{0,250}<[^<>@\s]+@[^<>\s]+>\s*:\s*$"),
    re.compile(r"^\s*-{2,}\s*(Original Message|Исходное сообщение)\s*-*\s*$", re.I),
    re.compile(r"^\s*(From|От|Von)\s*:\s.*@", re.I),
    re.compile(r"^\s*_{20,}\s*$"),
]
# Where a signature starts: the RFC 3676 delimiter and the phones' "sent from".
_SIGNATURE = [
    re.compile(r"^-- ?$"),
    re.compile(
        r"^\s*(Sent from my |Sent from Mail|Get Outlook for |Отправлено с |Отправлено из )", re.I
    ),
]


def strip_reply(text: str) -> str:
    """What the customer wrote: above the quoted original and the signature; quoted lines
    (">") in between are left out. Nothing left (a mail that is all quote): the whole text."""
    out: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if any(p.match(line) for p in _QUOTE_HEADER) or any(p.match(line) for p in _SIGNATURE):
            break
        if line.lstrip().startswith(">"):
            continue
        out.append(line.rstrip())
    kept = "\n".join(out).strip()
    kept = re.sub(r"\n{3,}", "\n\n", kept)
    return kept or text.strip()


class _Text(html.parser.HTMLParser):
    _BLOCK = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "blockquote"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script", "head"):
            self.skip += 1
        elif tag == "blockquote":
            self.parts.append("\n> ")
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "head"):
            self.skip = max(0, self.skip - 1)

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def html_text(markup: str) -> str:
    p = _Text()
    p.feed(markup)
    return re.sub(r"[ \t]+", " ", "".join(p.parts))


def message_ids(value: object) -> list[str]:
    return _MSGID.findall(str(value or ""))


def is_automatic(msg: EmailMessage, sender: str) -> bool:
    """An auto-reply, a bounce or bulk mail (RFC 3834 and what mailers use in practice)."""
    auto = str(msg.get("Auto-Submitted", "")).strip().lower()
    if auto and auto != "no":
        return True
    if str(msg.get("Precedence", "")).strip().lower() in ("bulk", "junk", "list", "auto_reply"):
        return True
    for header in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress", "List-Id"):
        if msg.get(header) is not None:
            return True
    if str(msg.get("Return-Path", "")).strip() == "<>":
        return True
    if not sender or _BOUNCE_SENDERS.match(sender):
        return True
    ctype = msg.get_content_type()
    return ctype == "multipart/report" or "delivery-status" in str(msg.get("Content-Type", ""))


def _own_addresses(settings: Settings) -> set[str]:
    own = {parseaddr(settings.smtp_from)[1].lower()}
    if "@" in settings.imap_user:
        own.add(settings.imap_user.lower())
    return {a for a in own if a}


def ticket_of_reply_address(settings: Settings, address: str) -> str | None:
    """The ticket number a signed reply+<ticket>.<sig>@ address names (None: not one)."""
    match = mail._REPLY_RE.match(address)
    if not match:
        return None
    number = match["number"].upper()
    if not hmac.compare_digest(match["sig"].lower(), mail._sig(settings, number)):
        return None
    return number


def _body(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError):  # an unknown charset: what can be read of it
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    if not isinstance(content, str):
        return ""
    return html_text(content) if part.get_content_type() == "text/html" else content


def _files(msg: EmailMessage) -> list[InFile]:
    out = []
    for part in msg.iter_attachments():
        if not isinstance(part, EmailMessage) or part.is_multipart():
            continue
        data = part.get_payload(decode=True)
        if isinstance(data, bytes) and data:
            out.append(InFile(part.get_filename(), data))
    return out


def parse(raw: bytes, settings: Settings) -> Inbound | None:
    """A raw RFC 5322 message as the channel's Inbound; None for our own mail."""
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    name, sender = parseaddr(str(msg.get("From", "")))
    sender = sender.strip().lower()
    if msg.get(OWN_HEADER) is not None or sender in _own_addresses(settings):
        return None
    ids = message_ids(msg.get("Message-ID"))
    external = ids[0] if ids else "sha256:" + hashlib.sha256(raw).hexdigest()
    refs = message_ids(msg.get("In-Reply-To")) + list(reversed(message_ids(msg.get("References"))))
    number = None
    for header in ("To", "Cc", "Delivered-To", "X-Original-To"):
        for _, address in getaddresses([str(v) for v in msg.get_all(header, [])]):
            number = number or ticket_of_reply_address(settings, address)
    subject = " ".join(str(msg.get("Subject", "")).split())[:255] or None
    valid = bool(EMAIL_RE.match(sender))
    return Inbound(
        channel=NAME,
        external_id=external[:255],
        address=sender[:254] if valid else sender[:254] or "unknown",
        email=sender if valid else None,
        name=" ".join(name.split())[:100] or None,
        subject=subject,
        text=strip_reply(_body(msg)),
        files=_files(msg),
        refs=list(dict.fromkeys(refs)),
        ticket_number=number,
        automatic=is_automatic(msg, sender) or not valid,
    )


# ---------------------------------------------------------------- inbound: the IMAP consumer


class ImapError(Exception):
    pass


_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")


def _lines(resp: Any) -> list[bytes]:
    return [
        bytes(x) if isinstance(x, bytearray) else x
        for x in resp.lines
        if isinstance(x, bytes | bytearray)
    ]


def _ok(resp: Any, what: str) -> Any:
    if resp.result != "OK":
        raise ImapError(f"{what}: {resp.result} {_lines(resp)[-1:]!r}")
    return resp


class Consumer:
    """Reads the mailbox in the process that holds the lease (see the module docstring)."""

    def __init__(self, rt: Runtime) -> None:
        s = rt.settings
        self.rt = rt
        key = f"email:{s.imap_user}@{s.imap_host}:{s.imap_port}/{s.imap_folder}"
        self.lease = Lease(rt, "email:" + hashlib.sha256(key.encode()).hexdigest()[:40], 0)
        self.lease.ttl = max(15.0, s.imap_poll_seconds * 2 + 10)
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.lease.release(), 5)

    async def run(self) -> None:
        s = self.rt.settings
        backoff = 1.0
        while True:
            try:
                if await self.lease.acquire():
                    await self.session()
                    backoff = 1.0
                    continue
                await asyncio.sleep(self.lease.ttl / 3)
                continue
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, ImapError, aioimaplib.Abort, aioimaplib.Error) as exc:
                log.warning("email inbox: %s: %s", type(exc).__name__, exc)
            except Exception as exc:
                if storage_unavailable(exc):
                    log.warning("email inbox: storage unavailable, will retry")
                else:
                    log.exception("email inbox pass failed")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, max(1.0, s.imap_poll_seconds))

    async def session(self) -> None:
        """One connection: catch up, then wait for more; returns when the lease is lost."""
        s = self.rt.settings
        lost = asyncio.get_running_loop().create_future()

        def on_lost(exc: Exception | None) -> None:
            if not lost.done():
                lost.set_result(exc)

        client = aioimaplib.IMAP4(
            host=s.imap_host,
            port=s.imap_port,
            timeout=30,
            conn_lost_cb=on_lost,
            ssl_context=ssl.create_default_context() if s.imap_tls == "ssl" else None,
        )
        work = asyncio.ensure_future(self._work(client))
        try:
            # A dropped connection ends the session at once (a command in flight would
            # otherwise wait for its timeout); run() reconnects.
            await asyncio.wait({work, lost}, return_when=asyncio.FIRST_COMPLETED)
            if not work.done():
                raise ImapError(f"connection lost: {lost.result()}")
            work.result()
        finally:
            if not work.done():
                work.cancel()
                with contextlib.suppress(BaseException):
                    await work
            if not lost.done():
                with contextlib.suppress(Exception):
                    if client.has_pending_idle():
                        client.idle_done()
                    await asyncio.wait_for(client.logout(), 2)

    async def _work(self, client: aioimaplib.IMAP4) -> None:
        s = self.rt.settings
        await client.wait_hello_from_server()
        _ok(await client.login(s.imap_user, s.imap_password), "login")
        selected = _ok(await client.select(s.imap_folder), "select")
        found = _UIDVALIDITY.search(b" ".join(_lines(selected)))
        uidvalidity = int(found.group(1)) if found else 0
        cursor = await self.lease.cursor()
        last = int(cursor.get("last_uid", 0)) if cursor.get("uidvalidity") == uidvalidity else 0
        if cursor and cursor.get("uidvalidity") != uidvalidity:
            log.warning("email inbox: new UIDVALIDITY, rereading (stored mail is skipped)")
        idle = s.imap_idle and client.has_capability("IDLE")
        while True:
            last = await self.catch_up(client, uidvalidity, last)
            if not await self.lease.acquire():
                return
            if idle:
                waiting = await client.idle_start(timeout=s.imap_poll_seconds)
                with contextlib.suppress(TimeoutError):
                    await client.wait_server_push(timeout=s.imap_poll_seconds + 1)
                client.idle_done()
                await asyncio.wait_for(waiting, 10)
            else:
                await asyncio.sleep(s.imap_poll_seconds)

    async def catch_up(self, client: aioimaplib.IMAP4, uidvalidity: int, last: int) -> int:
        """Store every message after UID `last`, in order; returns the new last UID. The
        cursor moves past a message only once it is stored (or is one we never store)."""
        found = _ok(await client.uid_search(f"UID {last + 1}:*"), "search")
        uids = sorted(
            {int(tok) for line in _lines(found)[:-1] for tok in line.split() if tok.isdigit()}
        )
        for uid in (u for u in uids if u > last):
            await self.take(client, uid)
            last = uid
            if not await self.lease.save_cursor({"uidvalidity": uidvalidity, "last_uid": uid}):
                raise ImapError("lost the lease")
        return last

    async def take(self, client: aioimaplib.IMAP4, uid: int) -> None:
        s = self.rt.settings
        sized = _ok(await client.uid("fetch", str(uid), "(RFC822.SIZE)"), "fetch")
        size = _SIZE.search(b" ".join(_lines(sized)))
        if size and int(size.group(1)) > s.imap_max_message_bytes:
            log.warning("email inbox: message %s is too large, skipped", uid)
            return
        fetched = _ok(await client.uid("fetch", str(uid), "(BODY.PEEK[])"), "fetch")
        raw = next((bytes(x) for x in fetched.lines if isinstance(x, bytearray)), None)
        if raw is None:
            return  # expunged meanwhile
        try:
            inbound = parse(raw, s)
        except Exception:  # a mail we cannot read must not stop the inbox
            log.exception("email inbox: message %s could not be parsed, skipped", uid)
            return
        if inbound is None:
            return  # our own
        result = await receive(self.rt, inbound)  # raises if storage failed: read again
        log.info("email inbox: message %s %s", uid, result.status)
        with contextlib.suppress(Exception):
            await client.uid("store", str(uid), "+FLAGS", r"(\Seen)")


# ---------------------------------------------------------------- outbound: SMTP


def _send_sync(settings: Settings, msg: EmailMessage) -> None:
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=10) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password)
        smtp.send_message(msg)


async def compose(
    rt: Runtime, ticket: Ticket, visitor: Visitor, message: dict[str, Any]
) -> EmailMessage:
    """The reply as it goes out: threaded on what the ticket's mails said."""
    s = rt.settings
    async with rt.store.read() as session:
        rows = (
            await session.execute(
                select(ChannelMessage.external_id, ChannelMessage.direction, ChannelMessage.subject)
                .where(ChannelMessage.channel == NAME, ChannelMessage.ticket_id == ticket.id)
                .order_by(ChannelMessage.id)
            )
        ).all()
    thread = [e for e, d, _ in rows if d in ("in", "out") and not e.startswith("sha256:")]
    inbound = [e for e, d, _ in rows if d == "in" and not e.startswith("sha256:")]
    subject = next((subj for _, d, subj in rows if d == "in" and subj), None)
    if subject is None:
        subject = f"Ответ поддержки · {ticket.number}"
    elif not re.match(r"^(re|ответ|отв)\s*:", subject, re.I):
        subject = f"Re: {subject}"
    msg = EmailMessage()
    msg["From"] = s.smtp_from
    msg["To"] = visitor.email or ""
    msg["Subject"] = subject
    msg["Reply-To"] = mail.reply_address(s, ticket.number)
    msg["Message-ID"] = make_msgid("td", domain=s.email_reply_domain)
    if inbound or thread:
        msg["In-Reply-To"] = f"<{(inbound or thread)[-1]}>"
        msg["References"] = " ".join(f"<{e}>" for e in thread[-20:])
    msg[OWN_HEADER] = ticket.number
    msg.set_content(message["message"])
    attachment = message.get("attachment")
    if message["kind"] in ("file", "voice") and attachment:
        a, data = await attachments.read_for_operator(rt, attachment["id"])
        maintype, _, subtype = a.mime.partition("/")
        msg.add_attachment(
            data, maintype=maintype, subtype=subtype or "octet-stream", filename=a.name
        )
    return msg


async def send(
    rt: Runtime, ticket: Ticket, visitor: Visitor, message: dict[str, Any]
) -> Sent | None:
    """Send one operator message; its Message-ID is returned (stored by the outbox) so the
    customer's reply threads. Raises when the mail could not be handed to the SMTP server."""
    if not visitor.email or message["sender_type"] != "admin":
        return None  # (a closing notice is not worth a mail)
    if not mail.enabled(rt.settings):
        raise smtplib.SMTPException("SMTP is not configured")
    msg = await compose(rt, ticket, visitor, message)
    await asyncio.to_thread(_send_sync, rt.settings, msg)
    return Sent(message_ids(msg["Message-ID"])[0], str(msg["Subject"])[:255])


class EmailChannel:
    name = NAME

    def enabled(self, settings: Settings) -> bool:
        return bool(settings.imap_host)

    def start(self, rt: Runtime) -> Stop | None:
        consumer = Consumer(rt)
        consumer.start()
        return consumer.stop

    async def send(
        self, rt: Runtime, ticket: Ticket, visitor: Visitor, message: dict[str, Any]
    ) -> Sent | None:
        return await send(rt, ticket, visitor, message)


CHANNEL = EmailChannel()
