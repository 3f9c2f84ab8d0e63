"""One customer's data: everything stored about them, as JSON; and its deletion for good."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select

from trustdesk.actions import audit, retention
from trustdesk.actions.errors import NotFound
from trustdesk.actions.messages import iso, message_json
from trustdesk.actions.runtime import Runtime
from trustdesk.actions.tickets import ticket_by_number
from trustdesk.store.models import (
    Base,
    Operator,
    ReadCursor,
    SupportMessage,
    Ticket,
    Visitor,
    utcnow,
)

log = logging.getLogger(__name__)


async def visitor_of_ticket(rt: Runtime, number: str) -> str:
    """The id of the customer who owns a ticket (by its "TKT-…" number)."""
    async with rt.store.read() as session:
        t = await ticket_by_number(session, number)
    if t is None:
        raise NotFound("no such ticket", "ticket_not_found")
    return t.visitor_id


# Per-ticket tables whose rows are already in the export (as messages) or are bookkeeping.
_NOT_RECORDS = frozenset({"support_messages", "read_cursors", "ticket_joins", "webhook_deliveries"})


def _plain(value: Any) -> Any:
    return iso(value) if isinstance(value, datetime) else value


def _row(obj: Any, skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Every column of a row (new columns included without touching this code)."""
    return {
        c.key: _plain(getattr(obj, c.key))
        for c in sa_inspect(type(obj)).column_attrs
        if c.key not in skip
    }


async def export_visitor(rt: Runtime, visitor_id: str) -> dict[str, Any]:
    """Everything stored about one customer: the visitor record (all but the token's hash),
    every ticket, every message (private notes included: they are about the customer; the
    operator decides what to hand over), read receipts, and the rows of any other table
    kept per ticket (files, ...)."""
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
        records: dict[str, list[dict[str, Any]]] = {}
        for table in Base.metadata.sorted_tables:
            if table.name in _NOT_RECORDS or "ticket_id" not in table.c or not ids:
                continue
            found = (await session.execute(select(table).where(table.c.ticket_id.in_(ids)))).all()
            if found:
                records[table.name] = [
                    {k: _plain(val) for k, val in r._mapping.items()} for r in found
                ]
    by_ticket: dict[str, list[SupportMessage]] = {}
    for m in msgs:
        by_ticket.setdefault(m.ticket_id, []).append(m)
    read = {c.ticket_id: c.last_read_id for c in cursors}
    numbers = {t.id: t.number for t, _ in rows}
    for items in records.values():
        for item in items:
            item["ticket_id"] = numbers.get(item["ticket_id"], item["ticket_id"])
    await audit.record_alone(rt, "customer.exported", v.id, {"tickets": len(rows)})
    return {
        "exported_at": iso(utcnow()),
        "visitor": _row(v, frozenset({"token_hash"})),
        "tickets": [
            {
                **_row(t, frozenset({"id", "number", "visitor_id", "assignee_id", "epoch"})),
                "ticketId": t.number,
                "assignee": {"id": op.id, "name": op.display_name} if op else None,
                "customer_last_read_id": int(read.get(t.id, 0)),
                "messages": [message_json(m, t.number) for m in by_ticket.get(t.id, [])],
            }
            for t, op in rows
        ],
        "records": records,
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
        audit.record(tx, "customer.erased", visitor_id, {"tickets": len(ids), "messages": messages})
    out = {"visitor_id": visitor_id, "tickets": len(ids), "messages": messages}
    # An audit line with no personal data in it: who erased which pseudonymous id.
    log.info("customer data deleted", extra={"operator_id": actor.id, "deleted": out})
    return out
