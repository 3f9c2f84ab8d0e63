"""Channels other than the widget: where customers write from, and where replies go back.

See channels/base.py for the boundary and docs/channels.md for the design. A new channel
(VK, Max) is one module with a `Channel` and one line in CHANNELS.
"""

from __future__ import annotations

import logging
from typing import Any

from trustdesk.actions.messages import for_channel
from trustdesk.actions.runtime import Runtime
from trustdesk.channels import email_inbox, outbox, telegram
from trustdesk.channels.base import Channel, Stop

log = logging.getLogger(__name__)

CHANNELS: dict[str, Channel] = {
    email_inbox.NAME: email_inbox.CHANNEL,
    telegram.NAME: telegram.CHANNEL,
}


def enabled(rt: Runtime) -> list[Channel]:
    return [ch for ch in CHANNELS.values() if ch.enabled(rt.settings)]


def start(rt: Runtime) -> Stop:
    """Start every configured channel's consumer and this process's reply sender (the
    outbox, channels/outbox.py); returns the function that stops them."""
    stops = [stop for ch in enabled(rt) if (stop := ch.start(rt)) is not None]
    sender = _senders[id(rt)] = outbox.Sender(rt, {ch.name: ch for ch in enabled(rt)})

    async def stop_all() -> None:
        if _senders.get(id(rt)) is sender:
            del _senders[id(rt)]
        await sender.stop()
        for stop in stops:
            await stop()

    return stop_all


_senders: dict[int, outbox.Sender] = {}


async def notify(rt: Runtime, messages: list[dict[str, Any]]) -> None:
    """After commit (an app NOTIFIER): a reply on a ticket of a channel has its outbox row
    (written with it, actions/messages.py); wake this process's sender to send it now.
    Costs nothing for the widget's messages."""
    sender = _senders.get(id(rt))
    if sender is None or not any(
        for_channel(m["sender_type"], m["kind"], m.get("notice")) for m in messages
    ):
        return
    sender.wake()
