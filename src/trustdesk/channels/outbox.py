"""Replies to channel customers, delivered from the database (channel_outbox).

actions/messages.py post_message writes an outbox row in the same transaction as every
operator message (and closing notice) on a ticket of a channel, so a reply committed just
before its process died is still sent when a process runs again. Every server process runs
a `Sender`: woken after each commit (channels.notify) and every POLL_SECONDS, it takes the
oldest pending row of each ticket (a ticket's replies go out one by one, in the order they
were written, whichever process sends them), claims it with the guarded UPDATE the webhook
deliveries use (actions/retry.py: one attempt by one process at a time), sends it through
the ticket's channel, and in one transaction records the channel's id of it
(channel_messages, so the customer's answer threads) and marks the row sent.

A failed send is retried after channel_retry_seconds, doubling up to
channel_retry_max_seconds, until channel_max_attempts (then "failed"); the ticket gets one
`channel_send_failed` note for operators at the first failure, not one per retry. A row of
a channel that is not configured (any more) is dropped as "failed" at once, unsent, as
before the outbox. A process that dies between a send and its record leaves the row to be
sent again once its claim lapses (CLAIM_SECONDS): at least once, and exactly once unless
the process dies in that instant.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select, update

from trustdesk.actions import retry, tickets
from trustdesk.actions.messages import message_json
from trustdesk.actions.runtime import Runtime
from trustdesk.store.db import storage_unavailable
from trustdesk.store.models import (
    ChannelMessage,
    ChannelOutbox,
    SupportMessage,
    Ticket,
    Visitor,
    utcnow,
)

if TYPE_CHECKING:
    from trustdesk.channels.base import Channel

log = logging.getLogger(__name__)

POLL_SECONDS = 30.0  # a pass without a wake-up (retries are woken by their due time)
CLAIM_SECONDS = 120.0  # longer than any send's timeouts (SMTP 10 s, Bot API 60 s)
BATCH = 200  # pending rows looked at per pass
KEEP_DAYS = 7  # sent and failed rows are kept this long (they only name a message)
PURGE_EVERY = 3600.0


async def _due(rt: Runtime) -> tuple[list[tuple[int, int, str]], datetime | None]:
    """(id, attempts, channel) of each ticket's oldest pending row that is due, and when
    the next one not yet due is."""
    now = utcnow()
    async with rt.store.read() as session:
        firsts = (
            select(func.min(ChannelOutbox.id))
            .where(ChannelOutbox.status == "pending")
            .group_by(ChannelOutbox.ticket_id)
            .limit(BATCH)
        )
        rows = (
            await session.execute(
                select(
                    ChannelOutbox.id,
                    ChannelOutbox.attempts,
                    ChannelOutbox.channel,
                    ChannelOutbox.next_attempt_at,
                )
                .where(ChannelOutbox.id.in_(firsts))
                .order_by(ChannelOutbox.id)
            )
        ).all()
    due = [(i, a, c) for i, a, c, at in rows if at <= now]
    later = [at for *_, at in rows if at > now]
    return due, min(later) if later else None


async def _finish(rt: Runtime, row_id: int, attempt: int, **values: Any) -> None:
    async with rt.store.transaction() as tx:
        await tx.session.execute(
            update(ChannelOutbox)
            .where(ChannelOutbox.id == row_id, ChannelOutbox.attempts == attempt)
            .values(updated_at=utcnow(), **values)
        )


async def _attempt(
    rt: Runtime, on: dict[str, Channel], row_id: int, attempts: int, ch: str
) -> None:
    now = utcnow()
    if ch not in on:
        await _finish(rt, row_id, attempts, status="failed", last_error="channel not configured")
        return
    until = now + timedelta(seconds=CLAIM_SECONDS)
    async with rt.store.transaction() as tx:
        if not await retry.claim(tx, ChannelOutbox, row_id, attempts, now, until):
            return
    attempt = attempts + 1
    async with rt.store.read() as session:
        found = (
            await session.execute(
                select(ChannelOutbox, SupportMessage, Ticket, Visitor)
                .join(SupportMessage, SupportMessage.id == ChannelOutbox.message_id)
                .join(Ticket, Ticket.id == ChannelOutbox.ticket_id)
                .join(Visitor, Visitor.id == Ticket.visitor_id)
                .where(ChannelOutbox.id == row_id)
            )
        ).first()
        if found is not None:
            box, msg, t, v = found
            payload = message_json(msg, t.number)
            noted = box.noted
    if found is None:  # the message or its ticket was deleted meanwhile
        await _finish(rt, row_id, attempt, status="failed", last_error="message deleted")
        return
    try:
        sent = await on[ch].send(rt, t, v, payload)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        await _failed(rt, row_id, attempt, t.number, ch, exc, noted)
        return
    async with rt.store.transaction() as tx:
        if sent is not None:
            tx.session.add(
                ChannelMessage(
                    channel=ch,
                    external_id=sent.external_id,
                    ticket_id=t.id,
                    message_id=payload["id"],
                    direction="out",
                    subject=sent.subject,
                    created_at=utcnow(),
                )
            )
        await tx.session.execute(
            update(ChannelOutbox)
            .where(ChannelOutbox.id == row_id, ChannelOutbox.attempts == attempt)
            .values(status="sent", last_error=None, updated_at=utcnow())
        )


async def _failed(
    rt: Runtime, row_id: int, attempt: int, number: str, ch: str, exc: Exception, noted: bool
) -> None:
    s = rt.settings
    error = (f"{type(exc).__name__}: {exc}".strip())[:500]
    final = attempt >= s.channel_max_attempts
    wait = retry.backoff(s.channel_retry_seconds, s.channel_retry_max_seconds, attempt)
    log.warning(
        "channel %s could not send a reply on %s (attempt %s%s): %s",
        ch,
        number,
        attempt,
        ", giving up" if final else f", again in {wait:.0f} s",
        error,
    )
    async with rt.store.transaction() as tx:
        values: dict[str, Any] = {"last_error": error, "noted": True, "updated_at": utcnow()}
        if final:
            values["status"] = "failed"
        else:
            values["next_attempt_at"] = utcnow() + timedelta(seconds=wait)
        await tx.session.execute(
            update(ChannelOutbox)
            .where(ChannelOutbox.id == row_id, ChannelOutbox.attempts == attempt)
            .values(**values)
        )
        if not noted:  # once per reply, not per retry
            t = await tickets.load_ticket(tx, number)
            if t is not None:
                await tickets.post_system_note(
                    tx, t, "channel_send_failed", None, channel=ch, error=error[:200]
                )


async def deliver_due(rt: Runtime, on: dict[str, Channel]) -> tuple[int, datetime | None]:
    """One pass: attempt each ticket's oldest due row once, tickets one after another (a
    customer's chat reads in the order the operator wrote). Returns how many were attempted
    and when the next pending row is due."""
    due, later = await _due(rt)
    for row_id, attempts, ch in due:
        try:
            await _attempt(rt, on, row_id, attempts, ch)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # storage down: the claim lapses and it is retried
            if not storage_unavailable(exc):
                log.exception("channel outbox: row %s", row_id)
    return len(due), later


async def purge(rt: Runtime, now: datetime | None = None) -> int:
    """Sent and failed rows older than KEEP_DAYS go."""
    cutoff = (now or utcnow()) - timedelta(days=KEEP_DAYS)
    async with rt.store.transaction() as tx:
        res = await tx.session.execute(
            delete(ChannelOutbox).where(
                ChannelOutbox.status != "pending", ChannelOutbox.updated_at < cutoff
            )
        )
        return int(getattr(res, "rowcount", 0) or 0)


class Sender:
    """This process's sender: a pass when woken (after a commit with a channel reply), when
    a retry is due, and every POLL_SECONDS."""

    def __init__(self, rt: Runtime, on: dict[str, Channel]) -> None:
        self.rt, self.on = rt, on
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        purged: float | None = None  # (monotonic time starts anywhere, e.g. at boot)
        while True:
            self._wake.clear()
            delay = POLL_SECONDS
            try:
                if purged is None or time.monotonic() - purged > PURGE_EVERY:
                    purged = time.monotonic()
                    await purge(self.rt)
                attempted, later = await deliver_due(self.rt, self.on)
                if attempted:
                    continue  # a ticket's next reply may be due now
                if later is not None:
                    delay = min(delay, max(0.05, (later - utcnow()).total_seconds()))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not storage_unavailable(exc):
                    log.exception("channel outbox pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
