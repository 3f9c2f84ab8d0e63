"""No missed chat: a customer's message unanswered for N minutes escalates (docs/escalation.md).

A ticket waits from the customer's first public message after the last operator reply
(`tickets.waiting_since` / `waiting_message_id`, kept by actions/messages.py post_message:
only an operator's public reply ends the wait; notes, bots and system notices do not;
closing does). N is the routing setting `escalate_after_minutes` (0: off), in units of
`escalate_unit_seconds` (60; tests make it shorter).

The ladder, per operator who should know (the assignee; unassigned: the ticket's team's
active members; no team: every active operator), each step only if they opted in:
  0  at once: sound and tab title, in the dashboard (web/admin/alerts.js)
  1  after N: web push to all their devices
  2  after 2N: email to their address
  3  after 3N: a Telegram message from the shop's bot to their linked chat

Every process runs `run_periodic`. A wait that reached N gets a `ticket_waits` row (the
report's "missed"); each (wait, operator, step) is claimed by inserting an
`escalation_sends` row under its unique key before it is sent, so several processes and
restarts send it once; a claim whose process died before sending is taken again after
CLAIM_SECONDS. Snoozed tickets do not escalate (they still count in the report).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, or_, select

from trustdesk.actions.errors import Conflict, Invalid, NotFound
from trustdesk.store.models import (
    EscalationSend,
    Operator,
    OperatorAlerts,
    PushSubscription,
    SupportMessage,
    TeamMember,
    Ticket,
    TicketWait,
    utcnow,
)
from trustdesk.store.raw import Sql

if TYPE_CHECKING:
    from trustdesk.actions.runtime import Runtime

log = logging.getLogger(__name__)

STEPS = ("push", "email", "telegram")  # the ladder's levels 1, 2, 3
OPT_INS = ("sound", "push", "email", "telegram")
DEFAULTS = {"sound": True, "push": True, "email": False, "telegram": False}
CLAIM_SECONDS = 120.0
BATCH = 500
LINK_MINUTES = 15
_START = re.compile(r"^/start(?:@\w+)?\s+([A-Za-z0-9_-]{8,64})\s*$")

_NEW_WAIT = Sql(
    "INSERT INTO ticket_waits (ticket_id, message_id, started_at, missed_at, level)"
    " VALUES (:t, :m, :s, :now, 0) ON CONFLICT (ticket_id, message_id) DO NOTHING"
)
_CLAIM = Sql(
    "INSERT INTO escalation_sends (wait_id, operator_id, step, status, claimed_until)"
    " VALUES (:w, :o, :step, 'claimed', :until)"
    " ON CONFLICT (wait_id, operator_id, step) DO NOTHING RETURNING id"
)
_RECLAIM = Sql(
    "UPDATE escalation_sends SET claimed_until = :until"
    " WHERE wait_id = :w AND operator_id = :o AND step = :step"
    " AND status = 'claimed' AND claimed_until < :now"
)


def threshold_seconds(rt: Runtime) -> float | None:
    """N in seconds; None: escalation is off."""
    n = rt.live.routing.escalate_after_minutes
    return None if n <= 0 else n * rt.settings.escalate_unit_seconds


# ----------------------------------------------------------------- operators' opt-ins


def _email_on(rt: Runtime) -> bool:
    from trustdesk.actions import email

    return email.enabled(rt.settings)


def _telegram_on(rt: Runtime) -> bool:
    from trustdesk.channels import telegram

    return telegram.CHANNEL.enabled(rt.settings)


def prefs_json(rt: Runtime, op: Operator, row: OperatorAlerts | None) -> dict[str, Any]:
    values = {k: bool(getattr(row, k)) if row is not None else v for k, v in DEFAULTS.items()}
    return {
        **values,
        "telegram_linked": bool(row is not None and row.telegram_chat_id),
        "email_address": op.email,
        "available": {"push": True, "email": _email_on(rt), "telegram": _telegram_on(rt)},
        "escalate_after_minutes": rt.live.routing.escalate_after_minutes,
        "unit_seconds": rt.settings.escalate_unit_seconds,
    }


async def get_prefs(rt: Runtime, op: Operator) -> dict[str, Any]:
    async with rt.store.read() as session:
        row = await session.get(OperatorAlerts, op.id)
    return prefs_json(rt, op, row)


async def set_prefs(rt: Runtime, op: Operator, patch: dict[str, bool]) -> dict[str, Any]:
    """Change some opt-ins. Telegram needs a linked chat and a bot; email an SMTP server."""
    if patch.get("telegram") and not _telegram_on(rt):
        raise Conflict("no Telegram bot is configured", "telegram_disabled", field="telegram")
    if patch.get("email") and not _email_on(rt):
        raise Conflict("email is not configured on this server", "email_disabled", field="email")
    async with rt.store.transaction() as tx:
        row = await tx.session.get(OperatorAlerts, op.id, with_for_update=True)
        if row is None:
            row = OperatorAlerts(operator_id=op.id, **DEFAULTS)
            tx.session.add(row)
        if patch.get("telegram") and not row.telegram_chat_id:
            raise Invalid("link Telegram first", "telegram_not_linked", field="telegram")
        for key, value in patch.items():
            setattr(row, key, bool(value))
        row.updated_at = utcnow()
    return prefs_json(rt, op, row)


def _code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


async def start_telegram_link(rt: Runtime, op: Operator) -> dict[str, Any]:
    """A one-time code for the bot's /start; the deep link t.me/<bot>?start=<code>."""
    if not _telegram_on(rt):
        raise Conflict("no Telegram bot is configured", "telegram_disabled")
    from trustdesk.channels import telegram

    try:
        bot = await telegram.bot_for(rt)  # (getMe: the bot's @username for the link)
    except Exception as exc:
        log.warning("telegram bot unreachable for a link: %s", exc)
        raise Conflict("the Telegram bot cannot be reached now", "telegram_unreachable") from exc
    code = secrets.token_urlsafe(18)  # 24 characters of [A-Za-z0-9_-]
    expires = utcnow() + timedelta(minutes=LINK_MINUTES)
    async with rt.store.transaction() as tx:
        row = await tx.session.get(OperatorAlerts, op.id, with_for_update=True)
        if row is None:
            row = OperatorAlerts(operator_id=op.id, **DEFAULTS)
            tx.session.add(row)
        row.link_code_hash = _code_hash(code)
        row.link_code_expires_at = expires
        row.updated_at = utcnow()
    from trustdesk.actions.messages import iso

    return {
        "code": code,
        "command": f"/start {code}",
        "url": f"https://t.me/{bot.username}?start={code}",
        "bot": bot.username,
        "expires_at": iso(expires),
    }


async def unlink_telegram(rt: Runtime, op: Operator) -> dict[str, Any]:
    async with rt.store.transaction() as tx:
        row = await tx.session.get(OperatorAlerts, op.id, with_for_update=True)
        if row is not None:
            row.telegram_chat_id = None
            row.telegram = False
            row.link_code_hash = row.link_code_expires_at = None
            row.updated_at = utcnow()
    return await get_prefs(rt, op)


async def telegram_start(rt: Runtime, chat_id: int, text: str) -> bool:
    """The bot got `text` in a private chat: an operator's "/start CODE" links that chat
    (answered "Готово") and is not a customer's message (True). Anything else: False."""
    from trustdesk.actions import texts
    from trustdesk.channels import telegram

    match = _START.match(text or "")
    if match is None:
        return False
    async with rt.store.transaction() as tx:
        row = await tx.session.scalar(
            select(OperatorAlerts)
            .where(OperatorAlerts.link_code_hash == _code_hash(match[1]))
            .with_for_update()
        )
        linked = (
            row is not None
            and row.link_code_expires_at is not None
            and row.link_code_expires_at > utcnow()
        )
        if row is not None:
            row.link_code_hash = row.link_code_expires_at = None
            if linked:
                row.telegram_chat_id = str(chat_id)
                row.telegram = True
            row.updated_at = utcnow()
    if row is None:
        return False  # a customer's /start with a payload of the shop's own: a message
    reply = texts.TELEGRAM_LINKED if linked else texts.TELEGRAM_LINK_EXPIRED
    try:
        await telegram.send_text(rt, chat_id, reply)
    except Exception as exc:  # the link is stored; the answer is a courtesy
        log.warning("telegram link answer failed: %s", exc)
    return True


# ----------------------------------------------------------------- the ladder


@dataclass
class _Due:
    ticket_id: str
    number: str
    waiting_since: datetime
    message_id: int
    assignee_id: int | None
    team_id: int | None
    wait_id: int | None
    level: int


async def _recipients(rt: Runtime, assignee_id: int | None, team_id: int | None) -> list[Operator]:
    async with rt.store.read() as session:
        active = select(Operator).where(Operator.active.is_(True))
        if assignee_id is not None:
            ops = list((await session.scalars(active.where(Operator.id == assignee_id))).all())
            if ops:
                return ops
        if team_id is not None:
            members = select(TeamMember.operator_id).where(TeamMember.team_id == team_id)
            ops = list((await session.scalars(active.where(Operator.id.in_(members)))).all())
            if ops:
                return ops
        return list((await session.scalars(active.order_by(Operator.id))).all())


async def _claim(rt: Runtime, d: _Due, wait_id: int, op_id: int, step: str) -> bool:
    """Take (wait, operator, step) for this process, if the ticket still waits on it."""
    now = utcnow()
    until = now + timedelta(seconds=CLAIM_SECONDS)
    async with rt.store.transaction() as tx:
        still = await tx.session.scalar(
            select(Ticket.waiting_message_id).where(Ticket.id == d.ticket_id)
        )
        if still != d.message_id:
            return False
        raw = await tx.raw()
        params = {"w": wait_id, "o": op_id, "step": step, "until": until, "now": now}
        if await raw.scalar(_CLAIM, params) is not None:
            return True
        return await raw.run(_RECLAIM, params) == 1


async def _finish(rt: Runtime, wait_id: int, op_id: int, step: str, error: str | None) -> None:
    async with rt.store.transaction() as tx:
        row = await tx.session.scalar(
            select(EscalationSend).where(
                EscalationSend.wait_id == wait_id,
                EscalationSend.operator_id == op_id,
                EscalationSend.step == step,
            )
        )
        if row is not None:
            row.status = "failed" if error else "sent"
            row.sent_at = utcnow()
            row.error = error[:200] if error else None


async def _preview(rt: Runtime, message_id: int) -> str:
    async with rt.store.read() as session:
        text = await session.scalar(
            select(SupportMessage.message).where(SupportMessage.id == message_id)
        )
    return (text or "")[:200]


async def _send(
    rt: Runtime, step: str, op: Operator, prefs: OperatorAlerts, d: _Due, minutes: int
) -> None:
    """One step to one operator; raises on failure."""
    from trustdesk.actions import email, push, texts

    preview = await _preview(rt, d.message_id)
    url = rt.settings.public_url.rstrip("/") + f"/admin#/ticket/{d.number}"
    line = texts.escalation_line(d.number, minutes)
    if step == "push":
        subs = await push.operator_subscriptions(rt, op.id)
        if not subs:
            raise RuntimeError("no push subscription")
        payload = {"title": line, "body": preview, "ticketId": d.number, "url": url}
        sent = await push.send_payload(rt, subs, json.dumps(payload, ensure_ascii=False))
        if not sent:
            raise RuntimeError("no push service took it")
    elif step == "email":
        body = f"{line}\n\n{preview}\n\n{url}\n"
        await email.send(rt.settings, op.email, line, body, rt.settings.smtp_from)
    else:
        from trustdesk.channels import telegram

        assert prefs.telegram_chat_id is not None
        await telegram.send_text(rt, int(prefs.telegram_chat_id), f"{line}\n{preview}\n{url}")


def _wanted(rt: Runtime, step: str, prefs: OperatorAlerts | None) -> bool:
    values = {k: getattr(prefs, k) if prefs is not None else v for k, v in DEFAULTS.items()}
    if not values[step]:
        return False
    if step == "email":
        return _email_on(rt)
    if step == "telegram":
        return _telegram_on(rt) and prefs is not None and bool(prefs.telegram_chat_id)
    return True


async def _escalate(rt: Runtime, d: _Due, due_level: int, unit: float) -> int:
    async with rt.store.transaction() as tx:
        params = {"t": d.ticket_id, "m": d.message_id, "s": d.waiting_since, "now": utcnow()}
        await (await tx.raw()).run(_NEW_WAIT, params)
        wait = await tx.session.scalar(
            select(TicketWait).where(
                TicketWait.ticket_id == d.ticket_id, TicketWait.message_id == d.message_id
            )
        )
        assert wait is not None
        wait_id, done = wait.id, wait.level
    if done >= due_level:
        return 0
    ops = await _recipients(rt, d.assignee_id, d.team_id)
    async with rt.store.read() as session:
        prefs = {
            p.operator_id: p
            for p in (
                await session.scalars(
                    select(OperatorAlerts).where(
                        OperatorAlerts.operator_id.in_([o.id for o in ops])
                    )
                )
            ).all()
        }
        with_push = set(
            (
                await session.scalars(
                    select(PushSubscription.operator_id).where(
                        PushSubscription.operator_id.in_([o.id for o in ops])
                    )
                )
            ).all()
        )
    minutes = max(1, round((utcnow() - d.waiting_since).total_seconds() / unit))
    sent = 0
    for level in range(done + 1, due_level + 1):
        step = STEPS[level - 1]
        for op in ops:
            p = prefs.get(op.id)
            if step == "push" and op.id not in with_push:
                continue  # (no device to push to)
            if not _wanted(rt, step, p) or not await _claim(rt, d, wait_id, op.id, step):
                continue
            error = None
            try:
                await _send(rt, step, op, p or OperatorAlerts(**DEFAULTS), d, minutes)
                sent += 1
            except Exception as exc:  # one channel failing never stops the others
                error = f"{type(exc).__name__}: {exc}"
                log.warning("escalation %s to operator %s failed: %s", step, op.id, error)
            await _finish(rt, wait_id, op.id, step, error)
    async with rt.store.transaction() as tx:
        row = await tx.session.get(TicketWait, wait_id, with_for_update=True)
        if row is not None and row.level < due_level:
            row.level = due_level
    return sent


async def escalate_due(rt: Runtime, now: datetime | None = None) -> int:
    """One pass over the tickets waiting N or longer; returns how many steps it sent.
    Safe to run in several processes at once."""
    n = threshold_seconds(rt)
    if n is None:
        return 0
    now = now or utcnow()
    async with rt.store.read() as session:
        rows = (
            await session.execute(
                select(
                    Ticket.id,
                    Ticket.number,
                    Ticket.waiting_since,
                    Ticket.waiting_message_id,
                    Ticket.assignee_id,
                    Ticket.team_id,
                    TicketWait.id,
                    TicketWait.level,
                )
                .outerjoin(
                    TicketWait,
                    and_(
                        TicketWait.ticket_id == Ticket.id,
                        TicketWait.message_id == Ticket.waiting_message_id,
                    ),
                )
                .where(
                    Ticket.waiting_since.is_not(None),
                    Ticket.waiting_since <= now - timedelta(seconds=n),
                    Ticket.status == "open",
                    Ticket.snoozed_until.is_(None),
                    or_(TicketWait.id.is_(None), TicketWait.level < len(STEPS)),
                )
                .order_by(Ticket.waiting_since)
                .limit(BATCH)
            )
        ).all()
    sent = 0
    for r in rows:
        assert r[2] is not None and r[3] is not None  # (the query's condition)
        d = _Due(r[0], r[1], r[2], int(r[3]), r[4], r[5], r[6], int(r[7] or 0))
        due_level = min(len(STEPS), int((now - d.waiting_since).total_seconds() // n))
        if d.wait_id is not None and d.level >= due_level:
            continue
        sent += await _escalate(rt, d, due_level, rt.settings.escalate_unit_seconds)
    return sent


async def run_periodic(rt: Runtime) -> None:
    """Every escalate_interval_seconds, until cancelled."""
    while True:
        await asyncio.sleep(rt.settings.escalate_interval_seconds)
        try:
            await escalate_due(rt)
        except Exception:
            log.exception("escalation pass failed")


# ----------------------------------------------------------------- the report


async def report_counts(rt: Runtime, since: datetime) -> dict[str, int]:
    """Customer messages that waited N or longer since `since` ("missed": each wait once,
    however many messages the customer added), and of those how many an operator answered
    afterwards ("answered late")."""
    answered = (
        select(SupportMessage.id)
        .where(
            SupportMessage.ticket_id == TicketWait.ticket_id,
            SupportMessage.id > TicketWait.message_id,
            SupportMessage.sender_type == "admin",
            SupportMessage.kind != "note",
        )
        .exists()
    )
    async with rt.store.read() as session:
        row = (
            await session.execute(
                select(
                    func.count(TicketWait.id),
                    func.count(TicketWait.id).filter(answered),
                ).where(TicketWait.started_at >= since)
            )
        ).one()
    return {"missed": int(row[0]), "answered_late": int(row[1])}


async def send_test_push(rt: Runtime, op: Operator, endpoint: str) -> dict[str, Any]:
    """ "Проверить push": a test push to this device only; the service worker posts the
    nonce back to the page, which shows whether it arrived."""
    from trustdesk.actions import push, texts

    subs = await push.operator_subscriptions(rt, op.id, endpoint)
    if not subs:
        raise NotFound("this device has no push subscription", "push_not_subscribed")
    nonce = secrets.token_urlsafe(12)
    payload = {"title": "TrustDesk", "body": texts.PUSH_TEST, "test": nonce, "url": "/admin"}
    sent = await push.send_payload(rt, subs, json.dumps(payload, ensure_ascii=False))
    return {"nonce": nonce, "sent": sent > 0}
