"""Email for customers who are not there: replies by email, replies back, transcripts."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import smtplib
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any

from sqlalchemy import select

from trustdesk.actions import customers, tickets
from trustdesk.actions.errors import Forbidden, Invalid, NotFound
from trustdesk.actions.runtime import Runtime
from trustdesk.config import Settings
from trustdesk.store.models import Ticket, Visitor

log = logging.getLogger(__name__)
_REPLY_RE = re.compile(r"^reply\+(?P<number>TKT-[0-9A-Z-]{1,30})\.(?P<sig>[0-9a-f]{20})@", re.I)


def enabled(settings: Settings) -> bool:
    return bool(settings.smtp_host)


def _sig(settings: Settings, number: str) -> str:
    key = settings.resolved_secret_key.encode()
    return hmac.new(key, f"reply:{number}".encode(), hashlib.sha256).hexdigest()[:20]


def reply_address(settings: Settings, number: str) -> str:
    """An unguessable reply-to address for one ticket."""
    return f"reply+{number}.{_sig(settings, number)}@{settings.email_reply_domain}"


def _send_sync(settings: Settings, to: str, subject: str, body: str, reply_to: str) -> None:
    msg = EmailMessage()
    msg["From"] = settings.smtp_from
    msg["To"] = to
    msg["Subject"] = subject
    msg["Reply-To"] = reply_to
    msg.set_content(body)
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=10) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password)
        smtp.send_message(msg)


def login_only(settings: Settings, timeout: float) -> None:
    """Connect, STARTTLS and log in as a send would, and send nothing (the checks)."""
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout) as smtp:
        smtp.ehlo()
        if settings.smtp_starttls:
            smtp.starttls()
            smtp.ehlo()
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password)
        smtp.noop()


async def send(settings: Settings, to: str, subject: str, body: str, reply_to: str) -> None:
    await asyncio.to_thread(_send_sync, settings, to, subject, body, reply_to)


async def notify_customers(rt: Runtime, messages: list[dict[str, Any]]) -> None:
    """An operator replied and the customer is away with an email on file: send it."""
    if not enabled(rt.settings):
        return
    replies = [m for m in messages if m["sender_type"] == "admin" and m["kind"] != "note"]
    for m in replies:
        async with rt.store.read() as session:
            row = (
                await session.execute(
                    select(Ticket, Visitor)
                    .join(Visitor, Visitor.id == Ticket.visitor_id)
                    .where(Ticket.number == m["ticket_id"])
                )
            ).first()
        if row is None:
            continue
        t, v = row
        if t.channel != "web":  # its own channel answers it (channels/)
            continue
        if not v.email or await rt.presence.is_online("visitor", v.id):
            continue
        body = (
            f"{m['sender_name']} ответил(а) на ваше обращение {t.number}:\n\n{m['message']}\n\n"
            "— Ответьте на это письмо, чтобы продолжить разговор."
        )
        try:
            await send(
                rt.settings,
                v.email,
                f"Ответ поддержки · {t.number}",
                body,
                reply_address(rt.settings, t.number),
            )
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("email to customer failed for %s: %s", t.number, exc)


async def send_transcript(rt: Runtime, visitor: Visitor, number: str, email: str | None) -> str:
    if not enabled(rt.settings):
        raise Forbidden("email is not configured on this server", "email_disabled")
    if email:
        await customers.set_contact(rt, visitor, email, None)
    t = await tickets.visitor_ticket(rt, visitor, number)
    async with rt.store.read() as session:
        v = await session.get(Visitor, visitor.id)
        msgs = await tickets.messages_after(session, t.id, 0, include_notes=False, limit=100_000)
    to = (v.email if v else None) or email
    if not to:
        raise Invalid("an email address is needed", "email_required")
    lines = [f"Переписка по обращению {t.number}", ""]
    for m in msgs:
        lines.append(f"[{m.created_at:%Y-%m-%d %H:%M} UTC] {m.sender_name}: {m.message}")
    await send(
        rt.settings,
        to,
        f"Переписка · {t.number}",
        "\n".join(lines),
        reply_address(rt.settings, t.number),
    )
    return to


def _strip_quoted(text: str) -> str:
    """Keep what the customer wrote above the quoted original."""
    out = []
    for line in text.splitlines():
        if line.startswith(">") or re.match(
            r"^(On .* wrote:|.*пишет:|-----Original Message)", line
        ):
            break
        out.append(line)
    return "\n".join(out).strip()


async def inbound(rt: Runtime, to: str, sender: str, text: str) -> tuple[Ticket, dict[str, Any]]:
    """A parsed email from the mail provider: the customer's reply lands in the ticket."""
    match = _REPLY_RE.match(parseaddr(to)[1] or to)
    if not match:
        raise NotFound("not a ticket reply address", "unknown_address")
    number = match["number"].upper()
    if not hmac.compare_digest(match["sig"].lower(), _sig(rt.settings, number)):
        raise NotFound("not a ticket reply address", "unknown_address")
    async with rt.store.read() as session:
        row = (
            await session.execute(
                select(Ticket, Visitor)
                .join(Visitor, Visitor.id == Ticket.visitor_id)
                .where(Ticket.number == number)
            )
        ).first()
    if row is None:
        raise NotFound("no such ticket", "ticket_not_found")
    _, visitor = row
    if not visitor.email or parseaddr(sender)[1].lower() != visitor.email.lower():
        raise Forbidden("the sender is not this ticket's customer", "sender_mismatch")
    body = _strip_quoted(text)
    t, msg, *_ = await tickets.send_customer_message(rt, visitor, body, number)
    return t, msg
