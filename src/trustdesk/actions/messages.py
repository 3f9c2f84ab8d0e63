"""The one place a message is created. Storage, fan-out and notifications hang off it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, literal_column, select
from sqlalchemy.orm.attributes import set_committed_value

from trustdesk.actions.errors import Invalid, NotFound
from trustdesk.actions.texts import Notice
from trustdesk.store import stream
from trustdesk.store.db import Tx
from trustdesk.store.models import Attachment, SupportMessage, Ticket, utcnow
from trustdesk.store.raw import Sql

SENDER_TYPES = frozenset({"customer", "admin", "system", "bot"})
KINDS = frozenset({"text", "note", "file", "voice"})
# Control characters other than newline and tab are stripped; NUL can never be stored.
_CONTROL = {c: None for c in range(32) if c not in (9, 10)} | {127: None}


_INSERT_MESSAGE = Sql(
    "INSERT INTO support_messages"
    " (ticket_id, sender_type, sender_name, operator_id, message, kind, client_msg_id,"
    " notice, created_at)"
    " VALUES (:ticket_id, :sender_type, :sender_name, :operator_id, :message, :kind,"
    " :client_msg_id, :notice, :created_at)"
    " ON CONFLICT (ticket_id, client_msg_id) DO NOTHING RETURNING id"
)
# A public message (customer, operator or bot, not a note) moves the ticket up the list and
# becomes its preview; a system notice or a note only extends the chain (last_message_id).
# A customer's public message starts the ticket's wait for an answer (if not waiting yet);
# an operator's public reply ends it (actions/escalation.py); a bot's leaves it.
_WAITING = (
    ", waiting_since = CASE WHEN CAST(:st AS text) = 'customer'"
    " THEN COALESCE(waiting_since, :now)"
    " WHEN CAST(:st AS text) = 'admin' THEN NULL ELSE waiting_since END,"
    " waiting_message_id = CASE WHEN CAST(:st AS text) = 'customer'"
    " THEN COALESCE(waiting_message_id, :mid)"
    " WHEN CAST(:st AS text) = 'admin' THEN NULL ELSE waiting_message_id END"
)
_TOUCH_HEAD = (
    "UPDATE tickets SET updated_at = :now, last_message_id = :mid, last_public_message_id = :mid"
)
_WAITING_HEAD = "UPDATE tickets SET last_public_message_id = :mid"
_BY_ID = " WHERE id = :tid"
_TOUCH_TICKET = Sql(_TOUCH_HEAD + _WAITING + _BY_ID)
_TOUCH_WAITING = Sql(_WAITING_HEAD + _WAITING + _BY_ID)
_TOUCH_LAST = Sql("UPDATE tickets SET last_message_id = :mid WHERE id = :tid")
# Moves a read cursor forward, never back: changes one row if it moved (or was created).
_MOVE_CURSOR = Sql(
    "INSERT INTO read_cursors (ticket_id, reader, last_read_id, updated_at)"
    " VALUES (:t, :r, :v, :now)"
    " ON CONFLICT (ticket_id, reader) DO UPDATE"
    " SET last_read_id = excluded.last_read_id, updated_at = excluded.updated_at"
    " WHERE read_cursors.last_read_id < excluded.last_read_id"
)
# PostgreSQL, the whole write in one round trip: lock the ticket row, insert the message
# (with its transaction's id, `tx`: the operators' stream's commit order, store/stream.py),
# move the ticket's last_message_id to it and the sender's read cursor (if any); returns
# (new id, the ticket's previous message, the ticket's id: None if the ticket is gone, tx).
# - No lock shared by every message: writers on different tickets run side by side. Per
#   ticket, ids are in commit order: the id is drawn after the ticket's row lock (the
#   insert reads `old`), held to commit.
# - Closing, reopening and assigning write the ticket row before posting their notice, so
#   every writer takes the ticket row first (tests/unit/test_message_chain.py).
# - The previous message is read through the row lock: under READ COMMITTED that gives the
#   row's newest committed version even though the statement's snapshot is older than the
#   lock wait, so a message committed meanwhile on the same ticket is never skipped
#   (the same test fails without it). FOR NO KEY UPDATE, the lock the UPDATE takes anyway:
#   FOR UPDATE would also wait for the key-share locks that rows referencing the ticket
#   take (a join row inserted before the message).
# Two variants, as _TOUCH_TICKET / _TOUCH_LAST: a public message, and a notice or a note.
_PG_HEAD = (
    "WITH old AS (SELECT id, last_message_id FROM tickets WHERE id = :ticket_id"
    " FOR NO KEY UPDATE),"
    " m AS (INSERT INTO support_messages"
    " (ticket_id, sender_type, sender_name, operator_id, message, kind, client_msg_id,"
    " notice, created_at, tx)"
    " SELECT :ticket_id, :sender_type, :sender_name, :operator_id, :message, :kind,"
    " :client_msg_id, :notice, :created_at, CAST(CAST(pg_current_xact_id() AS text) AS bigint)"
    " FROM old"
    " ON CONFLICT (ticket_id, client_msg_id) DO NOTHING RETURNING id, tx),"
    " touch AS (UPDATE tickets x SET last_message_id = m.id"
)
_PG_TAIL = (
    " FROM m, old WHERE x.id = old.id RETURNING old.last_message_id AS prev),"
    " cur AS (INSERT INTO read_cursors (ticket_id, reader, last_read_id, updated_at)"
    " SELECT :ticket_id, CAST(:reader AS text), m.id, :created_at FROM m"
    " WHERE CAST(:reader AS text) IS NOT NULL"
    " ON CONFLICT (ticket_id, reader) DO UPDATE"
    " SET last_read_id = excluded.last_read_id, updated_at = excluded.updated_at"
    " WHERE read_cursors.last_read_id < excluded.last_read_id)"
    " SELECT (SELECT id FROM m), (SELECT prev FROM touch), (SELECT id FROM old),"
    " (SELECT tx FROM m)"
)
_PG_PUBLIC = (
    ", last_public_message_id = m.id, updated_at = :created_at,"
    " waiting_since = CASE WHEN CAST(:sender_type AS text) = 'customer'"
    " THEN COALESCE(x.waiting_since, :created_at)"
    " WHEN CAST(:sender_type AS text) = 'admin' THEN NULL ELSE x.waiting_since END,"
    " waiting_message_id = CASE WHEN CAST(:sender_type AS text) = 'customer'"
    " THEN COALESCE(x.waiting_message_id, m.id)"
    " WHEN CAST(:sender_type AS text) = 'admin' THEN NULL ELSE x.waiting_message_id END"
)
_PG_POST = Sql(_PG_HEAD + _PG_PUBLIC + _PG_TAIL)
_PG_POST_QUIET = Sql(_PG_HEAD + _PG_TAIL)


def iso(dt: datetime) -> str:
    """UTC, microseconds, Z: 2026-11-28T09:00:00.000000Z (isoformat: faster than strftime)."""
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt.isoformat(timespec="microseconds") + "Z"


async def move_cursor(
    tx: Tx, ticket_id: str, reader: str, last_read_id: int, now: datetime | None = None
) -> bool:
    """Move a read cursor forward (never back). Returns True if it moved."""
    params = {"t": ticket_id, "r": reader, "v": last_read_id, "now": now or utcnow()}
    return await (await tx.raw()).run(_MOVE_CURSOR, params) > 0


class Duplicate(Exception):
    """A send with a client_msg_id the ticket already has: a retry. Raised by post_message
    when the insert finds that message; the caller's transaction rolls back (whatever it
    did before is undone) and the caller answers with the stored message (find_by_client_id).
    The common case, a first send, costs no lookup this way."""

    def __init__(self, ticket_id: str, client_msg_id: str) -> None:
        super().__init__(client_msg_id)
        self.ticket_id, self.client_msg_id = ticket_id, client_msg_id


def clean_text(text: str, max_chars: int) -> str:
    """Trim and bound a message: 1..max_chars characters after trimming."""
    if not isinstance(text, str):
        raise Invalid("message must be a string", "invalid_message")
    text = text.translate(_CONTROL).strip()
    if not text:
        raise Invalid("message is empty", "empty_message")
    if len(text) > max_chars:
        raise Invalid(f"message is longer than {max_chars} characters", "message_too_long")
    return text


def attachment_json(a: Attachment | None) -> dict[str, Any] | None:
    if a is None:
        return None
    return {
        "id": a.id,
        "name": a.name,
        "mime": a.mime,
        "kind": a.kind,
        "size": a.size,
        "width": a.width,
        "height": a.height,
    }


def message_dict(
    *,
    id: int,  # noqa: A002
    ticket_number: str,
    sender_type: str,
    sender_name: str,
    message: str,
    created_at: datetime,
    kind: str,
    client_msg_id: str | None,
    operator_id: int | None,
    attachment: dict[str, Any] | None,
    notice: Notice | None = None,
) -> dict[str, Any]:
    """A message as every API and socket shows it (the one shape: schemas.Message).
    `notice`: a system notice's code and args (actions/texts.py), for clients to word it in
    their locale; None for every other message and for notices stored before codes."""
    return {
        "id": id,
        "ticket_id": ticket_number,
        "sender_type": sender_type,
        "sender_name": sender_name,
        "message": message,
        "created_at": iso(created_at),
        "kind": kind,
        "client_msg_id": client_msg_id,
        "operator_id": operator_id,
        "attachment": attachment,
        "notice": notice,
    }


def notice_of(stored: str | None) -> Notice | None:
    """A stored notice column (JSON text) as the message JSON's `notice`."""
    if not stored:
        return None
    try:
        value = json.loads(stored)
    except ValueError:
        return None
    return value if isinstance(value, dict) and isinstance(value.get("code"), str) else None


def message_json(m: SupportMessage, ticket_number: str) -> dict[str, Any]:
    return message_dict(
        id=m.id,
        ticket_number=ticket_number,
        sender_type=m.sender_type,
        sender_name=m.sender_name,
        message=m.message,
        created_at=m.created_at,
        kind=m.kind,
        client_msg_id=m.client_msg_id,
        operator_id=m.operator_id,
        attachment=attachment_json(m.attachment) if m.kind in ("file", "voice") else None,
        notice=notice_of(m.notice),
    )


# A reply to a customer of a channel (email, Telegram): delivered by channels/outbox.py from
# this row, written with the message, so a commit followed by a crash still sends it.
_OUTBOX = Sql(
    "INSERT INTO channel_outbox (ticket_id, message_id, channel, status, attempts,"
    " next_attempt_at, noted, created_at, updated_at)"
    " VALUES (:t, :m, :c, 'pending', 0, :now, :no, :now, :now)"
)


def for_channel(sender_type: str, kind: str, notice: Notice | None) -> bool:
    """What goes back to a channel's customer: operators' public messages, and the closing
    notice (nothing else a system or bot says, never a note)."""
    if kind == "note":
        return False
    if sender_type == "admin":
        return True
    return sender_type == "system" and (notice or {}).get("code") == "ticket_closed"


_BY_CLIENT_ID = Sql("SELECT id FROM support_messages WHERE ticket_id = :t AND client_msg_id = :c")


async def find_by_client_id(tx: Tx, ticket_id: str, client_msg_id: str) -> SupportMessage | None:
    """The message a retried send already stored (a plain query: a retry is the exception).
    After a Duplicate, callers read it in a transaction of their own (write=False)."""
    found = await (await tx.raw()).scalar(_BY_CLIENT_ID, {"t": ticket_id, "c": client_msg_id})
    return None if found is None else await tx.session.get(SupportMessage, found)


async def post_message(
    tx: Tx,
    ticket: Ticket,
    *,
    sender_type: str,
    sender_name: str,
    text: str,
    kind: str = "text",
    operator_id: int | None = None,
    client_msg_id: str | None = None,
    attachment: Attachment | None = None,
    read_by: str | None = None,
    notice: Notice | None = None,
) -> dict[str, Any]:
    """Store one message in the caller's transaction and queue its events for after commit;
    returns the message as JSON (message_dict). `read_by`: the reader (read_cursors) whose
    cursor moves to this message, its sender's (on PostgreSQL in the same round trip).

    Text must already be cleaned (see clean_text). Private notes (kind "note") are only
    ever published to operators. A client_msg_id the ticket already has raises Duplicate
    (callers that take uploads look it up first instead).

    `notice`: a system notice's code and args (texts.notice), stored with `text`, its
    Russian sentence. Only a public message (customer, operator or bot; not a note) moves
    the ticket's updated_at (its place in the list) and becomes its preview
    (last_public_message_id); every message becomes its last_message_id.
    """
    assert sender_type in SENDER_TYPES and kind in KINDS
    assert notice is None or sender_type == "system"
    public = sender_type != "system" and kind != "note"
    now = utcnow()
    sender_name = sender_name[:100]
    fields = {
        "ticket_id": ticket.id,
        "sender_type": sender_type,
        "sender_name": sender_name,
        "operator_id": operator_id,
        "message": text,
        "kind": kind,
        "client_msg_id": client_msg_id,
        "notice": None if notice is None else json.dumps(notice, ensure_ascii=False),
        "created_at": now,
    }
    # `prev_id`, the ticket's previous message: sockets that have sent it can send this one
    # straight from the event; one that has not has a gap to fill from the database first.
    # SQLite's BEGIN IMMEDIATE held the whole database from the start, so the loaded row is
    # current. PostgreSQL (read committed) may have loaded the ticket before its row lock:
    # there it is read again under the lock, below.
    prev_id = ticket.last_message_id or 0
    pg = tx.dialect == "postgresql"
    xact = 0  # the stream's tx (store/stream.py): 0 on SQLite
    if attachment is None:
        # The hot path as plain statements (the ORM's unit of work cost more than all of
        # them). The ticket object is told the new values without being marked dirty.
        await tx.flush()  # whatever the caller changed goes first (the ticket row)
        raw = await tx.raw()
        cursor_moved = pg  # (on PostgreSQL by the same statement)
        if pg:  # the row lock, the insert and the rest in one statement
            sql = _PG_POST if public else _PG_POST_QUIET
            row = await raw.first(sql, {**fields, "reader": read_by})
            assert row is not None
            if row[2] is None:  # deleted meanwhile (a customer's data erased)
                raise NotFound("no such ticket", "ticket_not_found")
            inserted, prev_id, xact = row[0], int(row[1] or 0), int(row[3] or 0)
        else:
            inserted = await raw.scalar(_INSERT_MESSAGE, fields)
        if inserted is None:
            assert client_msg_id is not None  # only a client id can conflict
            raise Duplicate(ticket.id, client_msg_id)
        msg_id = int(inserted)
        if not pg:
            touch = _TOUCH_TICKET if public else _TOUCH_LAST
            params = {"tid": ticket.id, "now": now, "mid": msg_id}
            if public:
                params["st"] = sender_type
            await raw.run(touch, params)
        if public:
            set_committed_value(ticket, "updated_at", now)
            set_committed_value(ticket, "last_public_message_id", msg_id)
        set_committed_value(ticket, "last_message_id", msg_id)
        payload = message_dict(
            id=msg_id,
            ticket_number=ticket.number,
            sender_type=sender_type,
            sender_name=sender_name,
            message=text,
            created_at=now,
            kind=kind,
            client_msg_id=client_msg_id,
            operator_id=operator_id,
            attachment=None,
            notice=notice,
        )
    else:
        cursor_moved = False
        if pg:  # the ticket row first, as in _PG_POST, then the transaction's id
            last = select(Ticket.last_message_id, literal_column(stream.XACT_ID, BigInteger))
            found = (
                await tx.session.execute(
                    last.where(Ticket.id == ticket.id).with_for_update(key_share=True)
                )
            ).first()
            if found is None:
                raise NotFound("no such ticket", "ticket_not_found")
            prev_id, xact = int(found[0] or 0), int(found[1])
        msg = SupportMessage(**fields, tx=xact)
        attachment.ticket_id = ticket.id
        msg.attachment = attachment
        tx.session.add(msg)
        await tx.session.flush()
        if public:
            ticket.updated_at = now
            ticket.last_public_message_id = msg.id
            await tx.session.flush()
            params = {"tid": ticket.id, "now": now, "mid": msg.id, "st": sender_type}
            await (await tx.raw()).run(_TOUCH_WAITING, params)
        ticket.last_message_id = msg_id = msg.id
        payload = message_json(msg, ticket.number)
    if read_by is not None and not cursor_moved:
        await move_cursor(tx, ticket.id, read_by, msg_id, now)
    # The channel hook: a ticket of another channel than the widget gets its replies there.
    if ticket.channel != "web" and for_channel(sender_type, kind, notice):
        params = {"t": ticket.id, "m": msg_id, "c": ticket.channel, "now": now, "no": False}
        await (await tx.raw()).run(_OUTBOX, params)
    tx.prev_ids[msg_id] = prev_id
    tx.messages.append(payload)
    frame = {"type": "message", "message": payload}
    if kind != "note":
        tx.emit(f"ticket:{ticket.id}", {**frame, "prev_id": prev_id})
    tx.emit("operators", {**frame, "ticket_ref": ticket.id, "tx": xact})
    tx.emit("operators", {"type": "ticket_changed", "ticket_ref": ticket.id})
    return payload
