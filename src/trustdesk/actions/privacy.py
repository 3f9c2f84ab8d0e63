"""One customer's data: everything stored about them, as JSON; and its deletion for good."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from trustdesk.actions import retention
from trustdesk.actions.errors import NotFound
from trustdesk.actions.messages import iso, message_json
from trustdesk.actions.runtime import Runtime
from trustdesk.actions.tickets import ticket_by_number
from trustdesk.store.models import Operator, ReadCursor, SupportMessage, Ticket, Visitor, utcnow

log = logging.getLogger(__name__)


async def visitor_of_ticket(rt: Runtime, number: str) -> str:
    """The id of the customer who owns a ticket (by its "TKT-…" number)."""
    async with rt.store.read() as session:
        t = await ticket_by_number(session, number)
    if t is None:
        raise NotFound("no such ticket", "ticket_not_found")
    return t.visitor_id


async def export_visitor(rt: Runtime, visitor_id: str) -> dict[str, Any]:
    """Everything stored about one customer: the visitor record, every ticket, every message
    (private notes included: they are about the customer; the operator decides what to
    hand over), and the read receipts."""
    async with rt.store.read() as session:
        v = await session.get(Visitor, visitor_id) if len(visitor_id) <= 64 else None
        if v is None:
            raise NotFound("no such customer", "visitor_not_found")
        rows = (
            await session.execute(
                select(Ticket, Operator)
                .outerjoin(Operator, Operator.id == Ticket.assignee_id)
                .where(Ticket.visitor_id == v.id)
                .order_by(Ticket.created_at)
            )
        ).all()
        ids = [t.id for t, _ in rows]
        msgs = (
            await session.scalars(
                select(SupportMessage)
                .where(SupportMessage.ticket_id.in_(ids))
                .order_by(SupportMessage.id)
            )
        ).all()
        cursors = (
            await session.scalars(
                select(ReadCursor).where(
                    ReadCursor.ticket_id.in_(ids), ReadCursor.reader == "customer"
                )
            )
        ).all()
    by_ticket: dict[str, list[SupportMessage]] = {}
    for m in msgs:
        by_ticket.setdefault(m.ticket_id, []).append(m)
    read = {c.ticket_id: c.last_read_id for c in cursors}
    return {
        "exported_at": iso(utcnow()),
        "visitor": {
            "id": v.id,
            "name": v.name,
            "email": v.email,
            "user_agent": v.user_agent,
            "page_url": v.page_url,
            "created_at": iso(v.created_at),
            "last_seen_at": iso(v.last_seen_at),
        },
        "tickets": [
            {
                "ticketId": t.number,
                "status": t.status,
                "created_at": iso(t.created_at),
                "updated_at": iso(t.updated_at),
                "assignee": {"id": op.id, "name": op.display_name} if op else None,
                "customer_last_read_id": int(read.get(t.id, 0)),
                "messages": [message_json(m, t.number) for m in by_ticket.get(t.id, [])],
            }
            for t, op in rows
        ],
    }


async def delete_visitor(rt: Runtime, actor: Operator, visitor_id: str) -> dict[str, Any]:
    """Delete a customer for good: the visitor (their token stops working), their tickets,
    messages, read receipts, queued webhook deliveries, and whatever hooks registered with
    retention.on_tickets_deleted remove (files)."""
    async with rt.store.transaction() as tx:
        v = await tx.session.get(Visitor, visitor_id) if len(visitor_id) <= 64 else None
        if v is None:
            raise NotFound("no such customer", "visitor_not_found")
        ids = list(
            (await tx.session.scalars(select(Ticket.id).where(Ticket.visitor_id == v.id))).all()
        )
        messages = await retention.delete_tickets(tx, ids)
        await tx.session.delete(v)
    out = {"visitor_id": visitor_id, "tickets": len(ids), "messages": messages}
    # An audit line with no personal data in it: who erased which pseudonymous id.
    log.info("customer data deleted", extra={"operator_id": actor.id, "deleted": out})
    return out
