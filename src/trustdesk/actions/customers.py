"""Known customers (signed identity), their tickets, their email, ratings and the report."""

from __future__ import annotations

import hashlib
import hmac
import re
import statistics
import time
from collections import Counter
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from trustdesk.actions import labels, texts
from trustdesk.actions.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from trustdesk.actions.messages import iso, message_json
from trustdesk.actions.runtime import Runtime
from trustdesk.store.models import ChannelContact, SupportMessage, Ticket, Visitor, utcnow

if TYPE_CHECKING:
    from trustdesk.actions.settings import WidgetSettings

EMAIL_RE = re.compile(r"^[^@\s<>]{1,64}@[^@\s<>]{1,190}\.[^@\s<>]{1,60}$")


def guest_number(visitor_id: str, external_id: str | None = None) -> int:
    """A stable 4-digit number for a customer with neither name nor email ("Гость #4821"):
    derived from the shop's user id (the same on every device) or else the visitor's id, so
    it needs no column and never changes. Two guests may share one (1 in 9,000): the label
    tells people apart in a list, the ticket number identifies."""
    key = f"u:{external_id}" if external_id else f"v:{visitor_id}"
    return 1000 + int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") % 9000


def display_name(
    visitor_id: str, name: str | None, email: str | None, external_id: str | None = None
) -> str:
    """How a customer is shown everywhere (list, header, side panel, message author, push,
    email): their name, else their email, else "Гость #N"."""
    return name or email or texts.guest_name(guest_number(visitor_id, external_id))


def visitor_name(v: Visitor) -> str:
    return display_name(v.id, v.name, v.email, v.external_id)


async def rename_customer(rt: Runtime, number: str, name: str) -> str:
    """An operator sets (or, with "", clears) the customer's name: on every visitor row of
    a signed-in customer, so each of their devices shows it. Every dashboard hears of each
    of the customer's tickets (most recent 200). Returns the ticket's id."""
    clean = "".join(ch for ch in name if ch.isprintable()).strip()
    if len(clean) > rt.settings.max_name_chars:
        raise Invalid(f"name is longer than {rt.settings.max_name_chars}", "name_too_long")
    async with rt.store.transaction() as tx:
        t = await tx.session.scalar(select(Ticket).where(Ticket.number == number))
        if t is None:
            raise NotFound("no such ticket", "ticket_not_found")
        v = await tx.session.get(Visitor, t.visitor_id)
        assert v is not None
        ids = await owner_ids(tx.session, v)
        await tx.session.execute(
            update(Visitor).where(Visitor.id.in_(ids)).values(name=clean or None)
        )
        affected = await tx.session.scalars(
            select(Ticket.id)
            .where(Ticket.visitor_id.in_(ids))
            .order_by(Ticket.updated_at.desc())
            .limit(200)
        )
        for tid in {t.id, *affected.all()}:
            tx.emit("operators", {"type": "ticket_changed", "ticket_ref": tid})
        return t.id


def identity_signature(secret: str, user_id: str, expires: int) -> str:
    """What the shop's server computes: HMAC-SHA256(secret, "<user id>:<expires>"), hex."""
    return hmac.new(secret.encode(), f"{user_id}:{expires}".encode(), hashlib.sha256).hexdigest()


async def identify(
    rt: Runtime,
    visitor: Visitor,
    user_id: str,
    expires: int,
    signature: str,
    name: str | None = None,
    email: str | None = None,
) -> Visitor:
    """Link this browser's visitor to the shop's user, if and only if the signature holds."""
    secret = rt.settings.identity_secret
    if not secret:
        raise Forbidden("signed identities are not enabled on this server", "identity_disabled")
    expected = identity_signature(secret, user_id, expires)
    if not hmac.compare_digest(expected.encode(), signature.lower().encode()):
        raise Unauthorized("the identity signature is wrong", "identity_invalid")
    if expires < time.time():
        raise Unauthorized("the identity signature has expired", "identity_expired")
    if email is not None and not EMAIL_RE.match(email):
        raise Invalid("email is not valid", "invalid_email")
    async with rt.store.transaction() as tx:
        v = await tx.session.get(Visitor, visitor.id)
        assert v is not None
        if v.external_id and v.external_id != user_id:
            raise Conflict("this browser is signed in as another customer", "identity_conflict")
        v.external_id = user_id
        # The shop's name and email are the customer's: on each of their devices' rows, so
        # every ticket of theirs shows them (actions/customers.py display_name).
        known: dict[str, Any] = {}
        if name:
            known["name"] = v.name = name[: rt.settings.max_name_chars]
        if email:
            known["email"] = v.email = email
        if known:
            await tx.session.execute(
                update(Visitor).where(Visitor.external_id == user_id).values(**known)
            )
    return v


async def owner_ids(session: AsyncSession, visitor: Visitor) -> list[str]:
    """The visitor rows whose tickets this visitor may see: itself, or all of its customer."""
    if not visitor.external_id:
        return [visitor.id]
    rows = await session.scalars(
        select(Visitor.id).where(Visitor.external_id == visitor.external_id)
    )
    return list(rows.all())


MAX_LINKED_ADDRESSES = 20
MAX_LINKED_VISITORS = 500


async def linked_visitors(session: AsyncSession, visitor: Visitor) -> dict[str, str]:
    """For the operators only: the visitor rows of one customer across channels, each with
    why it is theirs: "customer" (the same browser, or the same signed-in user: owner_ids)
    or "email" (a widget visitor who gave one of the customer's addresses, or the email
    channel's contact at one). One step, bounded. Never used for what a visitor may open:
    that stays owner_ids (a typed address opens nothing, docs/channels.md Customers)."""
    ids = await owner_ids(session, visitor)
    out = dict.fromkeys(ids, "customer")
    given = await session.scalars(
        select(Visitor.email).where(Visitor.id.in_(ids), Visitor.email.is_not(None))
    )
    addresses = {e.strip().lower() for e in given.all() if e and EMAIL_RE.match(e.strip())}
    contacts = await session.scalars(
        select(ChannelContact.address).where(
            ChannelContact.visitor_id.in_(ids), ChannelContact.channel == "email"
        )
    )
    addresses |= set(contacts.all())
    wanted = sorted(addresses)[:MAX_LINKED_ADDRESSES]
    if not wanted:
        return out
    by_address = await session.scalars(
        select(Visitor.id).where(func.lower(Visitor.email).in_(wanted)).limit(MAX_LINKED_VISITORS)
    )
    by_contact = await session.scalars(
        select(ChannelContact.visitor_id).where(
            ChannelContact.channel == "email", ChannelContact.address.in_(wanted)
        )
    )
    for vid in [*by_address.all(), *by_contact.all()]:
        out.setdefault(vid, "email")
    return out


async def owns(session: AsyncSession, visitor: Visitor, ticket: Ticket) -> bool:
    if ticket.visitor_id == visitor.id:
        return True
    if not visitor.external_id:
        return False
    other = await session.get(Visitor, ticket.visitor_id)
    return other is not None and other.external_id == visitor.external_id


async def visitor_tickets(rt: Runtime, visitor: Visitor) -> list[dict[str, Any]]:
    """The customer's tickets, open first, then by latest activity."""
    async with rt.store.read() as session:
        ids = await owner_ids(session, visitor)
        tickets = (
            await session.scalars(
                select(Ticket).where(Ticket.visitor_id.in_(ids)).order_by(Ticket.updated_at.desc())
            )
        ).all()
        # (each ticket's preview: its last customer / operator / bot message)
        last_ids = [t.last_public_message_id for t in tickets if t.last_public_message_id]
        lasts = {
            m.id: m
            for m in (
                await session.scalars(select(SupportMessage).where(SupportMessage.id.in_(last_ids)))
            ).all()
        }
    ordered = sorted(tickets, key=lambda t: t.status != "open")  # stable: keeps recency
    out = []
    for t in ordered:
        last = lasts.get(t.last_public_message_id or -1)
        if last is not None and last.kind == "note":
            last = None
        out.append(
            {
                "ticketId": t.number,
                "status": t.status,
                "created_at": iso(t.created_at),
                "updated_at": iso(t.updated_at),
                "last_message": message_json(last, t.number) if last else None,
                "rating": t.rating,
            }
        )
    return out


async def set_contact(rt: Runtime, visitor: Visitor, email: str, name: str | None) -> None:
    email = email.strip()
    if not EMAIL_RE.match(email):
        raise Invalid("email is not valid", "invalid_email")
    async with rt.store.transaction() as tx:
        v = await tx.session.get(Visitor, visitor.id)
        assert v is not None
        v.email = email
        if name and name.strip():
            v.name = name.strip()[: rt.settings.max_name_chars]


async def rate(
    rt: Runtime, visitor: Visitor, number: str, score: int, comment: str | None
) -> dict[str, Any]:
    """ "How did we do?": 1-5 and a comment, once the ticket is closed (may be changed)."""
    if not 1 <= score <= 5:
        raise Invalid("score must be 1-5", "invalid_score")
    async with rt.store.transaction() as tx:
        t = await tx.session.scalar(select(Ticket).where(Ticket.number == number))
        if t is None or not await owns(tx.session, visitor, t):
            raise NotFound("no such ticket", "ticket_not_found")
        if t.status != "closed":
            raise Conflict("a ticket can be rated once it is closed", "ticket_open")
        t.rating = score
        t.rating_comment = (comment or "").strip()[:1000] or None
        t.rated_at = utcnow()
        tx.emit("operators", {"type": "ticket_changed", "ticket_ref": t.id})
        return {"ticketId": t.number, "rating": t.rating, "comment": t.rating_comment}


# ----------------------------------------------------------------- business hours

_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _parse_hours(spec: str) -> dict[int, list[tuple[int, int]]]:
    """ "mon-fri 09:00-18:00; sat 10:00-14:00" -> weekday -> [(start min, end min)]."""
    out: dict[int, list[tuple[int, int]]] = {}
    for part in filter(None, (p.strip().lower() for p in spec.split(";"))):
        days, _, span = part.partition(" ")
        a, _, b = days.partition("-")
        d0 = _DAYS.index(a)
        d1 = _DAYS.index(b) if b else d0
        start, _, end = span.strip().partition("-")
        h0, m0 = (int(x) for x in start.split(":"))
        h1, m1 = (int(x) for x in end.split(":"))
        for d in range(d0, d1 + 1):
            out.setdefault(d, []).append((h0 * 60 + m0, h1 * 60 + m1))
    return out


def within_hours(settings: WidgetSettings, now: datetime | None = None) -> bool:
    if not settings.business_hours.strip():
        return True
    local = (now or utcnow()).astimezone(ZoneInfo(settings.business_timezone))
    minute = local.hour * 60 + local.minute
    spans = _parse_hours(settings.business_hours).get(local.weekday(), [])
    return any(a <= minute < b for a, b in spans)


# ----------------------------------------------------------------- report


async def report(rt: Runtime, days: int) -> dict[str, Any]:
    """Tickets per day, first response and resolution times (medians), ratings."""
    since = utcnow() - timedelta(days=days)
    tz = ZoneInfo(rt.live.current.business_timezone)
    async with rt.store.read() as session:
        tickets = (await session.scalars(select(Ticket).where(Ticket.created_at >= since))).all()
        ids = [t.id for t in tickets]
        first_reply = dict(
            (
                await session.execute(
                    select(SupportMessage.ticket_id, func.min(SupportMessage.created_at))
                    .where(
                        SupportMessage.ticket_id.in_(ids),
                        SupportMessage.sender_type == "admin",
                        SupportMessage.kind != "note",
                    )
                    .group_by(SupportMessage.ticket_id)
                )
            ).all()
        )
        label_counts = await labels.counts_since(session, since)
    from trustdesk.actions import escalation

    waits = await escalation.report_counts(rt, since)
    per_day = Counter(t.created_at.astimezone(tz).date().isoformat() for t in tickets)
    day_list = []
    for i in range(days, -1, -1):
        d = (utcnow() - timedelta(days=i)).astimezone(tz).date().isoformat()
        day_list.append({"date": d, "tickets": per_day.get(d, 0)})
    first = []
    for t in tickets:
        fr = first_reply.get(t.id)
        if fr is not None:
            if fr.tzinfo is None:
                fr = fr.replace(tzinfo=t.created_at.tzinfo)
            first.append((fr - t.created_at).total_seconds())
    resolution = [
        (t.closed_at - t.created_at).total_seconds() for t in tickets if t.closed_at is not None
    ]
    ratings = [t.rating for t in tickets if t.rating]
    return {
        "days": days,
        "tickets": len(tickets),
        "per_day": day_list,
        "first_response_seconds_median": statistics.median(first) if first else None,
        "resolution_seconds_median": statistics.median(resolution) if resolution else None,
        "rating_average": round(statistics.fmean(ratings), 2) if ratings else None,
        "ratings": len(ratings),
        "rating_counts": {str(k): ratings.count(k) for k in range(1, 6)},
        "labels": label_counts,
        # Waits that reached N unanswered, and those answered after it (actions/escalation.py)
        "missed": waits["missed"],
        "answered_late": waits["answered_late"],
        "escalate_after_minutes": rt.live.routing.escalate_after_minutes,
    }
