"""Merging two tickets of one customer: the conversation of one continues in the other.

Messages keep their ids (the operator stream's `since` stays valid: a row changes ticket,
never id) and so their order. Widgets open on the merged ticket get a `ticket` frame naming
the surviving one: chat.js's setTicket then starts the view afresh and says hello again
with that ticket and since=0, so the customer sees the whole merged conversation.
"""

from __future__ import annotations

from sqlalchemy.orm.attributes import set_committed_value

from trustdesk.actions import customers, labels, texts, tickets
from trustdesk.actions.errors import Conflict, Invalid, NotFound
from trustdesk.actions.messages import post_message
from trustdesk.actions.runtime import Runtime
from trustdesk.store.db import Tx
from trustdesk.store.models import Operator, Ticket, Visitor, utcnow
from trustdesk.store.raw import Sql

# A client_msg_id is unique per ticket: one the surviving ticket has already is dropped
# from the moved message (it only ever served to answer a retry of that send).
_FREE_CLIENT_IDS = Sql(
    "UPDATE support_messages SET client_msg_id = NULL WHERE ticket_id = :f"
    " AND client_msg_id IN (SELECT client_msg_id FROM support_messages"
    " WHERE ticket_id = :i AND client_msg_id IS NOT NULL)"
)
_MOVE_MESSAGES = Sql("UPDATE support_messages SET ticket_id = :i WHERE ticket_id = :f")
_MOVE_ATTACHMENTS = Sql("UPDATE attachments SET ticket_id = :i WHERE ticket_id = :f")
_LAST_ID = Sql("SELECT max(id) FROM support_messages WHERE ticket_id = :i")
_SET_LAST = Sql("UPDATE tickets SET last_message_id = :m WHERE id = :i")
# Both tickets' previews after the move: their last customer / operator / bot message.
_SET_PREVIEWS = Sql(
    "UPDATE tickets SET last_public_message_id = (SELECT max(m.id) FROM support_messages m"
    " WHERE m.ticket_id = tickets.id AND m.sender_type <> 'system' AND m.kind <> 'note')"
    " WHERE id IN (:f, :i)"
)
_OPERATOR_NAME = Sql("SELECT display_name FROM operators WHERE id = :id")


async def _load_pair(tx: Tx, src_number: str, dst_number: str) -> tuple[Ticket, Ticket]:
    """Both tickets, locked in one order (by number) whoever merges which into which: two
    merges of the same pair, crossed, would otherwise deadlock on PostgreSQL. The scope
    locks first, as every ticket action takes them, then the rows."""
    order = sorted((src_number, dst_number))
    for number in order:
        await tx.lock_scope(f"ticket:{number}")
    found: dict[str, Ticket] = {}
    for number in order:
        t = await tickets.load_ticket(tx, number, lock=True)
        if t is None:
            field = "from" if number == src_number else "into"
            raise NotFound("no such ticket", "ticket_not_found", field=field)
        found[number] = t
    return found[src_number], found[dst_number]


async def _notice(tx: Tx, t: Ticket, src: str, dst: str, op: Operator) -> None:
    text, notice = texts.notice("ticket_merged", **{"from": src, "into": dst})
    await post_message(
        tx,
        t,
        sender_type="system",
        sender_name=texts.SYSTEM_NAME,
        text=text,
        operator_id=op.id,
        notice=notice,
    )


async def merge_tickets(rt: Runtime, op: Operator, src_number: str, dst_number: str) -> str:
    """Move every message, attachment and label of `src` into `dst`, post the notice in
    both, close `src`; one transaction. Returns the surviving ticket's id."""
    if src_number == dst_number:
        raise Invalid("a ticket cannot be merged with itself", "same_ticket", field="into")
    async with rt.store.transaction() as tx:
        src, dst = await _load_pair(tx, src_number, dst_number)
        visitor = await tx.session.get(Visitor, src.visitor_id)
        assert visitor is not None
        if not await customers.owns(tx.session, visitor, dst):
            raise Conflict("the tickets belong to different customers", "different_customers")
        raw = await tx.raw()
        ids = {"f": src.id, "i": dst.id}
        await raw.run(_FREE_CLIENT_IDS, ids)
        await raw.run(_MOVE_MESSAGES, ids)
        await raw.run(_MOVE_ATTACHMENTS, ids)
        await labels.move_all(tx, src.id, dst.id)
        # The surviving ticket's last message may now be a moved one: its notice then says
        # so (prev_id), and a widget open on it fills the gap from the database.
        last = int(await raw.scalar(_LAST_ID, {"i": dst.id}) or 0)
        if last > (dst.last_message_id or 0):
            await raw.run(_SET_LAST, {"m": last, "i": dst.id})
            set_committed_value(dst, "last_message_id", last)
        await raw.run(_SET_PREVIEWS, ids)
        await _notice(tx, dst, src.number, dst.number, op)
        if src.status != "closed":
            src.status = "closed"
            src.closed_at = utcnow()
        src.waiting_since = src.waiting_message_id = None  # (actions/escalation.py)
        await _notice(tx, src, src.number, dst.number, op)
        name = None
        if dst.assignee_id:
            name = await raw.scalar(_OPERATOR_NAME, {"id": dst.assignee_id})
        frame = tickets.visitor_ticket_json(dst, name)
        # After the notice: the widget shows it, then follows the surviving ticket.
        tx.emit(f"ticket:{src.id}", {"type": "ticket", "ticket": frame})
        return dst.id
