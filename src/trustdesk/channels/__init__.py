"""Channels other than the widget: where customers write from, and where replies go back.

See channels/base.py for the boundary and docs/channels.md for the design. A new channel
(VK, Max) is one module with a `Channel` and one line in CHANNELS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy import select

from trustdesk.actions.runtime import Runtime
from trustdesk.channels import email_inbox, telegram
from trustdesk.channels.base import Channel, Stop
from trustdesk.store.models import Ticket, Visitor

log = logging.getLogger(__name__)

CHANNELS: dict[str, Channel] = {
    email_inbox.NAME: email_inbox.CHANNEL,
    telegram.NAME: telegram.CHANNEL,
}


def enabled(rt: Runtime) -> list[Channel]:
    return [ch for ch in CHANNELS.values() if ch.enabled(rt.settings)]


def start(rt: Runtime) -> Stop:
    """Start every configured channel's consumer; returns the function that stops them."""
    stops = [stop for ch in enabled(rt) if (stop := ch.start(rt)) is not None]

    async def stop_all() -> None:
        box = _outboxes.pop(id(rt), None)
        if box is not None:
            await box.stop()
        for stop in stops:
            await stop()

    return stop_all


def _outgoing(m: dict[str, Any]) -> bool:
    """What a channel may send: operators' public messages, and the closing notice."""
    if m["kind"] == "note":
        return False
    if m["sender_type"] == "admin":
        return True
    return m["sender_type"] == "system" and (m.get("notice") or {}).get("code") == "ticket_closed"


class _Outbox:
    """This process's outgoing channel messages, sent one at a time in commit order (a
    customer reads a chat in the order the operator wrote it)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batch = await self.queue.get()
            try:
                await _deliver(self.rt, batch)
            except Exception:
                log.exception("channel delivery failed")

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


_outboxes: dict[int, _Outbox] = {}


async def notify(rt: Runtime, messages: list[dict[str, Any]]) -> None:
    """After commit (an app NOTIFIER): operators' public messages (and closing notices) on
    tickets of a channel go out through it, queued here before this coroutine first waits,
    so in commit order. Costs nothing when no channel is configured."""
    if not enabled(rt) or not any(_outgoing(m) for m in messages):
        return
    box = _outboxes.get(id(rt))
    if box is None or box.rt is not rt:
        box = _outboxes[id(rt)] = _Outbox(rt)
    box.queue.put_nowait(messages)


async def _deliver(rt: Runtime, messages: list[dict[str, Any]]) -> None:
    on = {ch.name: ch for ch in enabled(rt)}
    replies = [m for m in messages if _outgoing(m)]
    numbers = sorted({m["ticket_id"] for m in replies})
    async with rt.store.read() as session:
        rows = (
            await session.execute(
                select(Ticket, Visitor)
                .join(Visitor, Visitor.id == Ticket.visitor_id)
                .where(Ticket.number.in_(numbers), Ticket.channel.in_(sorted(on)))
            )
        ).all()
    found = {t.number: (t, v) for t, v in rows}
    for m in replies:
        if m["ticket_id"] not in found:
            continue
        t, v = found[m["ticket_id"]]
        try:
            await on[t.channel].send(rt, t, v, m)
        except Exception:
            log.exception("channel %s could not send a reply on %s", t.channel, t.number)
