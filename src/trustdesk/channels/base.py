"""The channel boundary: what every channel (the widget aside) gives and gets.

Inbound, a channel turns what it receives into an `Inbound` and hands it to
`channels.inbound.receive`, which stores it through the one message-creating function
(actions/messages.py post_message) and, for a new conversation, the one ticket-creating one
(actions/tickets.py start_ticket). Outbound, `channels.notify` runs after every commit (an
app NOTIFIER, as web push and the away-customer email) and hands each operator message on a
ticket of that channel to the channel's `send`. A channel is one module: a `Channel` with
`enabled`, `start` (its consumer, if it has one) and `send`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from trustdesk.actions.runtime import Runtime
from trustdesk.config import Settings
from trustdesk.store.models import Ticket, Visitor, utcnow
from trustdesk.store.raw import Sql

Stop = Callable[[], Awaitable[None]]


@dataclass
class InFile:
    """A file that came with a message; it goes through the upload checks
    (actions/attachments.py) like a file sent in the widget."""

    name: str | None
    data: bytes
    voice: bool = False  # a voice note: a voice message if the checks find audio


@dataclass
class Inbound:
    """One message received by a channel.

    `external_id`: the channel's id of it (an email's Message-ID), unique in the channel: a
    message received twice (a restart, an outage, a redelivery) is stored once.
    `address`: the customer in the channel (an email address, lower-cased; a chat id).
    `refs`: the external ids it answers (In-Reply-To, References), newest first.
    `ticket_number`: a ticket a signed reply address named (already verified).
    `automatic`: an auto-reply or a bounce: never a ticket, never answered; on a known ticket
    a note for the operators."""

    channel: str
    external_id: str
    address: str
    text: str
    name: str | None = None
    email: str | None = None
    subject: str | None = None
    files: list[InFile] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)
    ticket_number: str | None = None
    automatic: bool = False
    # Chats (Telegram) have no threads: a message goes to the contact's open ticket.
    continue_open: bool = False
    refused: list[str] = field(default_factory=list)  # files not even fetched (too large)


@dataclass
class Received:
    """What receive() did: "stored", "duplicate" (had it already), "noted" (an automatic
    message noted on its ticket) or "ignored" (an automatic message on no known ticket)."""

    status: str
    ticket_number: str | None = None
    message_ids: list[int] = field(default_factory=list)


@dataclass
class Sent:
    """A message a channel delivered: its id there (an email's Message-ID, a Telegram
    chat:message id), stored in channel_messages so an answer to it threads back."""

    external_id: str
    subject: str | None = None


class Channel(Protocol):
    name: str

    def enabled(self, settings: Settings) -> bool: ...

    def start(self, rt: Runtime) -> Stop | None:
        """Start the channel's consumer in this process (None: it has none)."""

    async def send(
        self, rt: Runtime, ticket: Ticket, visitor: Visitor, message: dict[str, Any]
    ) -> Sent | None:
        """Deliver one committed operator message of a ticket of this channel (called by
        channels/outbox.py, which records what was sent). None: nothing to send (no
        address). Any exception is a failed attempt, retried."""


# ---------------------------------------------------------------- consumer state


_ENSURE = Sql(
    "INSERT INTO channel_state (name, holder, lease_until, cursor, updated_at)"
    " VALUES (:n, NULL, NULL, '{}', :now) ON CONFLICT (name) DO NOTHING"
)
_TAKE = Sql(
    "UPDATE channel_state SET holder = :h, lease_until = :until, updated_at = :now"
    " WHERE name = :n AND (holder IS NULL OR holder = :h OR lease_until < :now)"
)
_RELEASE = Sql(
    "UPDATE channel_state SET holder = NULL, lease_until = NULL WHERE name = :n AND holder = :h"
)
_CURSOR = Sql("SELECT cursor FROM channel_state WHERE name = :n")
_SAVE = Sql(
    "UPDATE channel_state SET cursor = :c, updated_at = :now WHERE name = :n AND holder = :h"
)


class Lease:
    """One consumer per channel across every server process: the row's holder, renewed
    while it works, taken over by another process once it has lapsed (a crashed process
    holds it at most `ttl`). The cursor is written only by the holder."""

    def __init__(self, rt: Runtime, name: str, ttl: float) -> None:
        self.rt, self.name, self.ttl = rt, name, ttl
        self.holder = secrets.token_hex(8)

    async def acquire(self) -> bool:
        """Take or renew the lease; False while another process holds it."""
        now = utcnow()
        params = {"n": self.name, "h": self.holder, "now": now}
        async with self.rt.store.transaction() as tx:
            raw = await tx.raw()
            await raw.run(_ENSURE, params)
            until = now + timedelta(seconds=self.ttl)
            return await raw.run(_TAKE, {**params, "until": until}) == 1

    async def release(self) -> None:
        async with self.rt.store.transaction() as tx:
            await (await tx.raw()).run(_RELEASE, {"n": self.name, "h": self.holder})

    async def cursor(self) -> dict[str, Any]:
        async with self.rt.store.raw_read() as raw:
            value = await raw.scalar(_CURSOR, {"n": self.name})
        try:
            loaded = json.loads(value or "{}")
        except ValueError:
            return {}
        return loaded if isinstance(loaded, dict) else {}

    async def save_cursor(self, cursor: dict[str, Any]) -> bool:
        """False if the lease was lost meanwhile (another process took over)."""
        params = {"n": self.name, "h": self.holder, "c": json.dumps(cursor), "now": utcnow()}
        async with self.rt.store.transaction() as tx:
            return await (await tx.raw()).run(_SAVE, params) == 1
