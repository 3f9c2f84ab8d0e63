"""What a channel received becomes messages: stored once, in the right ticket.

One transaction per received message: its dedupe row (channel_messages, unique on the
channel's id of it), the customer's contact and visitor rows, the ticket (found by a signed
reply address, by the ids the message answers, or started with start_ticket) and its
messages, all through post_message: the text first, then one message per attached file.
Either all of it is stored or none, so a channel may hand the same message over again after
any failure (it must, until it has been told "stored" or "duplicate").
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from contextlib import AsyncExitStack
from typing import Any

from sqlalchemy import select

from trustdesk.actions import attachments, tickets
from trustdesk.actions.errors import ActionError, RateLimited
from trustdesk.actions.messages import post_message
from trustdesk.actions.runtime import Runtime
from trustdesk.actions.visitors import token_hash
from trustdesk.channels.base import Inbound, Received
from trustdesk.store.db import Tx
from trustdesk.store.models import ChannelContact, ChannelMessage, Ticket, Visitor, utcnow
from trustdesk.store.raw import Sql

log = logging.getLogger(__name__)

MAX_FILES = 10
_CONTROL = {c: None for c in range(32) if c not in (9, 10)} | {127: None}

_CLAIM = Sql(
    "INSERT INTO channel_messages"
    " (channel, external_id, ticket_id, message_id, direction, subject, created_at)"
    " VALUES (:c, :e, NULL, NULL, :d, :s, :now)"
    " ON CONFLICT (channel, external_id) DO NOTHING RETURNING id"
)
_SEEN = Sql("SELECT id FROM channel_messages WHERE channel = :c AND external_id = :e")
_LINK = Sql(
    "UPDATE channel_messages SET ticket_id = :t, message_id = :m, direction = :d WHERE id = :id"
)


def client_id(channel: str, external_id: str) -> str:
    """The messages' idempotency key (client_msg_id, at most 64 characters)."""
    return f"{channel}:" + hashlib.sha256(external_id.encode()).hexdigest()[:40]


def bounded_text(text: str, max_chars: int) -> str:
    """A received text as a message may hold it: control characters out, cut to size."""
    text = text.translate(_CONTROL).strip()
    if len(text) > max_chars:
        text = text[: max_chars - 1].rstrip() + "…"
    return text


async def contact_visitor(tx: Tx, msg: Inbound) -> Visitor:
    """The visitor row of the customer at this address in this channel, made on first
    contact. Its token is random and never given out: the address alone opens nothing in
    the widget, and a widget visitor who typed the same email sees none of these tickets."""
    await tx.lock_scope(f"contact:{msg.channel}:{msg.address}")
    s = tx.session
    found = await s.scalar(
        select(Visitor)
        .join(ChannelContact, ChannelContact.visitor_id == Visitor.id)
        .where(ChannelContact.channel == msg.channel, ChannelContact.address == msg.address)
    )
    if found is not None:
        if msg.name and not found.name:
            found.name = msg.name[:100]
        return found
    v = Visitor(
        id=secrets.token_hex(16),
        token_hash=token_hash(secrets.token_urlsafe(32)),
        name=(msg.name or "")[:100] or None,
        email=msg.email,
        created_at=utcnow(),
        last_seen_at=utcnow(),
    )
    s.add(v)
    await s.flush()
    s.add(ChannelContact(channel=msg.channel, address=msg.address, visitor_id=v.id))
    await s.flush()
    return v


async def _thread(tx: Tx, msg: Inbound, visitor: Visitor | None) -> Ticket | None:
    """The ticket this message continues: one its reply address named, or one a message it
    answers belongs to; only a ticket of this customer (same contact, or a widget ticket
    whose customer left this email address), unless `visitor` is None (an automatic
    message, only ever noted: a bounce comes from the mailer, not the customer). None: a
    new conversation."""
    s = tx.session
    candidates: list[Ticket] = []
    if msg.ticket_number:
        t = await tickets.ticket_by_number(s, msg.ticket_number)
        if t is not None:
            candidates.append(t)
    if msg.refs:
        rows = (
            await s.execute(
                select(ChannelMessage.external_id, ChannelMessage.ticket_id).where(
                    ChannelMessage.channel == msg.channel,
                    ChannelMessage.external_id.in_(msg.refs[:50]),
                    ChannelMessage.ticket_id.is_not(None),
                )
            )
        ).all()
        by_ref = {e: tid for e, tid in rows}
        for ref in msg.refs:  # the newest reference first
            tid = by_ref.get(ref)
            if tid is not None:
                t = await s.get(Ticket, tid)
                if t is not None:
                    candidates.append(t)
                break
    for t in candidates:
        if visitor is None or t.visitor_id == visitor.id:
            return t
        owner = await s.get(Visitor, t.visitor_id)
        if owner is not None and msg.email and (owner.email or "").lower() == msg.email:
            return t
    return None


async def receive(rt: Runtime, msg: Inbound) -> Received:
    """Store one received message (see the module's docstring). Raises only when storage
    failed: then nothing was stored and the channel hands it over again later."""
    async with rt.store.raw_read() as raw:
        if await raw.scalar(_SEEN, {"c": msg.channel, "e": msg.external_id}) is not None:
            return Received("duplicate")
    text = bounded_text(msg.text, rt.settings.max_message_chars)
    prepared: list[tuple[bytes, Any, str, int | None, int | None]] = []
    refused: list[str] = list(msg.refused)
    voice: list[bool] = []
    if not msg.automatic:
        for f in msg.files[:MAX_FILES]:
            try:
                prepared.append(await attachments._prepare(rt, f.data, f.name))
                voice.append(f.voice)
            except ActionError as exc:
                refused.append(f"{f.name or 'file'} ({exc.code})")
        refused += [f.name or "file" for f in msg.files[MAX_FILES:]]
    if refused:
        text = (text + "\n\n" if text else "") + "Вложения не приняты: " + ", ".join(refused)
    if not text and not prepared:
        text = bounded_text(msg.subject or "", rt.settings.max_message_chars) or "(пустое письмо)"
    async with AsyncExitStack() as stack:
        staged = [await stack.enter_async_context(attachments._staged(rt, p[0])) for p in prepared]
        async with rt.store.transaction() as tx:
            return await _store(rt, tx, msg, text, prepared, staged, voice)
    raise AssertionError("unreachable")  # pragma: no cover


async def _store(
    rt: Runtime,
    tx: Tx,
    msg: Inbound,
    text: str,
    prepared: list[tuple[bytes, Any, str, int | None, int | None]],
    staged: list[tuple[str, Any]],
    voice: list[bool],
) -> Received:
    raw = await tx.raw()
    params = {
        "c": msg.channel,
        "e": msg.external_id,
        "d": "in",
        "s": (msg.subject or "")[:255] or None,
        "now": utcnow(),
    }
    row_id = await raw.scalar(_CLAIM, params)
    if row_id is None:  # stored meanwhile (another process, a retry)
        return Received("duplicate")
    if msg.automatic:
        t = await _thread(tx, msg, None)
        if t is None:
            await raw.run(_LINK, {"t": None, "m": None, "d": "ignored", "id": row_id})
            return Received("ignored")
        note = await tickets.post_system_note(
            tx, t, "channel_automatic", None, channel=msg.channel, subject=msg.subject or ""
        )
        await raw.run(_LINK, {"t": t.id, "m": note["id"], "d": "ignored", "id": row_id})
        return Received("noted", t.number, [note["id"]])
    visitor = await contact_visitor(tx, msg)
    t = await _thread(tx, msg, visitor)
    if t is None and msg.continue_open:
        t = await tx.session.scalar(
            select(Ticket)
            .where(Ticket.visitor_id == visitor.id, Ticket.status == "open")
            .order_by(Ticket.updated_at.desc())
            .limit(1)
        )
    if t is None:
        try:
            # (routing rules by keywords read the subject and the first message)
            first = f"{msg.subject}\n{msg.text}" if msg.subject else msg.text
            t = await tickets.start_ticket(
                rt, tx, visitor, None, first_text=first, channel=msg.channel
            )
        except RateLimited:
            # Past the cap on new tickets per customer: into their latest ticket instead
            # (a mail is never refused, and never lost).
            t = await tx.session.scalar(
                select(Ticket)
                .where(Ticket.visitor_id == visitor.id)
                .order_by(Ticket.updated_at.desc())
                .limit(1)
            )
            assert t is not None
        if msg.subject:  # a new conversation: the operators see what it is about
            subject = bounded_text(msg.subject, 255)
            text = bounded_text(f"{subject}\n\n{text}", rt.settings.max_message_chars)
    elif t.status == "closed":
        await tickets._reopen(tx, t)
    name = msg.name or msg.address
    ids: list[int] = []
    if text:
        sent = await post_message(
            tx,
            t,
            sender_type="customer",
            sender_name=name,
            text=text,
            client_msg_id=client_id(msg.channel, msg.external_id),
            read_by="customer",
        )
        ids.append(sent["id"])
    for i, ((data, ftype, clean_name, width, height), (digest, stage), is_voice) in enumerate(
        zip(prepared, staged, voice, strict=True)
    ):
        sent = await post_message(
            tx,
            t,
            sender_type="customer",
            sender_name=name,
            text=clean_name,
            kind="voice" if is_voice and ftype.kind == "audio" else "file",
            client_msg_id=client_id(msg.channel, f"{msg.external_id}#{i}"),
            attachment=attachments._attachment(
                ftype, clean_name, data, digest, visitor.id, width, height
            ),
            read_by="customer",
        )
        await attachments._promote(stage)
        ids.append(sent["id"])
    if t.snoozed_until is not None:
        await tickets.unsnooze(tx, t, None, by="customer")
    await raw.run(_LINK, {"t": t.id, "m": ids[0] if ids else None, "d": "in", "id": row_id})
    tx.emit("operators", {"type": "ticket_changed", "ticket_ref": t.id})
    log.info("channel message stored", extra={"channel": msg.channel, "ticket": t.number})
    return Received("stored", t.number, ids)
