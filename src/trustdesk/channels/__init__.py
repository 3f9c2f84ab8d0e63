"""Channels other than the widget: where customers write from, and where replies go back.

See channels/base.py for the boundary and docs/channels.md for the design. A new channel
(VK, Max) is one module with a `Channel` and one line in CHANNELS.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from trustdesk.actions.runtime import Runtime
from trustdesk.channels import email_inbox
from trustdesk.channels.base import Channel, Stop
from trustdesk.store.models import Ticket, Visitor

log = logging.getLogger(__name__)

CHANNELS: dict[str, Channel] = {email_inbox.NAME: email_inbox.CHANNEL}


def enabled(rt: Runtime) -> list[Channel]:
    return [ch for ch in CHANNELS.values() if ch.enabled(rt.settings)]


def start(rt: Runtime) -> Stop:
    """Start every configured channel's consumer; returns the function that stops them."""
    stops = [stop for ch in enabled(rt) if (stop := ch.start(rt)) is not None]

    async def stop_all() -> None:
        for stop in stops:
            await stop()

    return stop_all


async def notify(rt: Runtime, messages: list[dict[str, Any]]) -> None:
    """After commit (an app NOTIFIER): operators' public messages on tickets of a channel go
    out through it. Costs nothing when no channel is configured."""
    on = {ch.name: ch for ch in enabled(rt)}
    if not on:
        return
    replies = [m for m in messages if m["sender_type"] == "admin" and m["kind"] != "note"]
    if not replies:
        return
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
