"""Labels: tags on tickets ("Доставка", "Возврат", "Оплата") to find and count them.

Admins manage the set (create, rename, recolour, delete); any operator puts an existing
label on a ticket or takes it off (as in Chatwoot and Crisp: a free-for-all set of tags
soon holds "доставка", "Доставка " and "dostavka"). This module reads and writes only the
two label tables and ticket ids, so tickets.py and customers.py can use it without a cycle.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from trustdesk.actions import audit
from trustdesk.actions.errors import Conflict, Invalid, NotFound
from trustdesk.actions.runtime import Runtime
from trustdesk.store.db import Tx
from trustdesk.store.models import Label, Ticket, TicketLabel
from trustdesk.store.raw import Raw, Sql

MAX_NAME = 40
# Bounds on what an operator can make: a label set is a short menu, not a database.
MAX_LABELS = 200
MAX_PER_TICKET = 20
# Renaming or deleting a label re-announces at most this many tickets (newest first); the
# others show the new name when the list is next read.
ANNOUNCE_AT_MOST = 500
COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
_SPACE_RE = re.compile(r"\s+")

# The ticket list's fragment (tickets._list_statement): tickets with label :label. (The
# search `q` matches label names there too, on name_key.)
LIST_FILTER = (
    " AND EXISTS (SELECT 1 FROM ticket_labels tl"
    " WHERE tl.ticket_id = t.id AND tl.label_id = :label)"
)
_OF_TICKETS = Sql(
    "SELECT tl.ticket_id, l.id, l.name, l.color FROM ticket_labels tl"
    " JOIN labels l ON l.id = tl.label_id WHERE tl.ticket_id IN :ids[text] ORDER BY l.name_key"
)
_TICKET_ID = Sql("SELECT id FROM tickets WHERE number = :n")
_PUT = Sql(
    "INSERT INTO ticket_labels (ticket_id, label_id) VALUES (:t, :l)"
    " ON CONFLICT (ticket_id, label_id) DO NOTHING"
)
_TAKE = Sql("DELETE FROM ticket_labels WHERE ticket_id = :t AND label_id = :l")
_COUNT_ON = Sql("SELECT count(*) FROM ticket_labels WHERE ticket_id = :t")
# Merging: the labels of :f that :i lacks go to :i, then :f's are dropped.
_MOVE = Sql(
    "INSERT INTO ticket_labels (ticket_id, label_id)"
    " SELECT :i, label_id FROM ticket_labels WHERE ticket_id = :f"
    " ON CONFLICT (ticket_id, label_id) DO NOTHING"
)
_DROP_ALL = Sql("DELETE FROM ticket_labels WHERE ticket_id = :f")


def label_json(label: Label, tickets: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": label.id, "name": label.name, "color": label.color}
    if tickets is not None:
        out["tickets"] = tickets
    return out


def clean_name(name: object) -> str:
    """Trimmed, inner spaces collapsed, 1..40 characters, no control characters."""
    if not isinstance(name, str):
        raise Invalid("name must be a string", "invalid_label_name", field="name")
    name = _SPACE_RE.sub(" ", "".join(c for c in name if c.isprintable() or c == " ")).strip()
    if not 1 <= len(name) <= MAX_NAME:
        raise Invalid(f"name must have 1-{MAX_NAME} characters", "invalid_label_name", field="name")
    return name


def clean_color(color: object) -> str:
    if not isinstance(color, str) or not COLOR_RE.match(color):
        raise Invalid("color must be #rrggbb", "invalid_label_color", field="color")
    return color.lower()


def name_key(name: str) -> str:
    return name.lower()


# ---------------------------------------------------------------- reads


async def list_labels(rt: Runtime) -> list[dict[str, Any]]:
    """Every label by name, each with the number of tickets it is on."""
    async with rt.store.read() as session:
        used = func.count(TicketLabel.ticket_id)
        rows = (
            await session.execute(
                select(Label, used)
                .outerjoin(TicketLabel, TicketLabel.label_id == Label.id)
                .group_by(Label.id)
                .order_by(Label.name_key)
            )
        ).all()
    return [label_json(label, int(n)) for label, n in rows]


async def of_tickets(raw: Raw, ticket_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """ticket id -> its labels ({id, name, color}, by name): the summaries' `labels`."""
    out: dict[str, list[dict[str, Any]]] = {}
    for tid, lid, name, color in await raw.all(_OF_TICKETS, {"ids": ticket_ids}):
        out.setdefault(tid, []).append({"id": lid, "name": name, "color": color})
    return out


async def counts_since(session: AsyncSession, since: datetime) -> list[dict[str, Any]]:
    """For the report: each label with the number of tickets created since `since` that
    carry it (labels on none included, with 0), most used first."""
    n = func.count(Ticket.id)
    rows = (
        await session.execute(
            select(Label.id, Label.name, Label.color, n)
            .select_from(Label)
            .outerjoin(TicketLabel, TicketLabel.label_id == Label.id)
            .outerjoin(Ticket, and_(Ticket.id == TicketLabel.ticket_id, Ticket.created_at >= since))
            .group_by(Label.id, Label.name, Label.color, Label.name_key)
            .order_by(n.desc(), Label.name_key)
        )
    ).all()
    return [{"id": i, "name": name, "color": c, "tickets": int(k)} for i, name, c, k in rows]


# ---------------------------------------------------------------- the set (admins)


async def _check_free(tx: Tx, key: str, but: int | None = None) -> None:
    q = select(Label.id).where(Label.name_key == key)
    if but is not None:
        q = q.where(Label.id != but)
    if await tx.session.scalar(q) is not None:
        raise Conflict("a label with this name exists", "label_exists", field="name")


async def create_label(rt: Runtime, name: str, color: str) -> dict[str, Any]:
    name, color = clean_name(name), clean_color(color)
    async with rt.store.transaction() as tx:
        await tx.lock_scope("labels")  # (PostgreSQL) two admins creating "Возврат" at once
        await _check_free(tx, name_key(name))
        if (await tx.session.scalar(select(func.count(Label.id))) or 0) >= MAX_LABELS:
            raise Conflict(f"at most {MAX_LABELS} labels", "too_many_labels")
        label = Label(name=name, name_key=name_key(name), color=color)
        tx.session.add(label)
        await tx.session.flush()
        audit.record(tx, "label.created", name, {"id": label.id, "color": color})
        return label_json(label, 0)


async def _announce_tickets_of(tx: Tx, label_id: int) -> None:
    """Dashboards re-read the summaries of the (newest) tickets carrying the label."""
    ids = (
        await tx.session.scalars(
            select(TicketLabel.ticket_id)
            .join(Ticket, Ticket.id == TicketLabel.ticket_id)
            .where(TicketLabel.label_id == label_id)
            .order_by(Ticket.updated_at.desc())
            .limit(ANNOUNCE_AT_MOST)
        )
    ).all()
    for tid in ids:
        tx.emit("operators", {"type": "ticket_changed", "ticket_ref": tid})


async def update_label(
    rt: Runtime, label_id: int, name: str | None, color: str | None
) -> dict[str, Any]:
    """Rename and/or recolour."""
    new_name = None if name is None else clean_name(name)
    new_color = None if color is None else clean_color(color)
    async with rt.store.transaction() as tx:
        await tx.lock_scope("labels")
        label = await tx.session.get(Label, label_id)
        if label is None:
            raise NotFound("no such label", "label_not_found")
        old = label_json(label)
        if new_name is not None:
            await _check_free(tx, name_key(new_name), but=label.id)
            label.name, label.name_key = new_name, name_key(new_name)
        if new_color is not None:
            label.color = new_color
        await tx.session.flush()
        audit.record(tx, "label.changed", old["name"], audit.changes(old, label_json(label)))
        await _announce_tickets_of(tx, label.id)
        used = await tx.session.scalar(
            select(func.count(TicketLabel.ticket_id)).where(TicketLabel.label_id == label.id)
        )
        return label_json(label, int(used or 0))


async def delete_label(rt: Runtime, label_id: int) -> None:
    """Delete a label; it leaves every ticket it was on."""
    async with rt.store.transaction() as tx:
        await tx.lock_scope("labels")
        label = await tx.session.get(Label, label_id)
        if label is None:
            raise NotFound("no such label", "label_not_found")
        audit.record(tx, "label.deleted", label.name, {"id": label.id})
        await _announce_tickets_of(tx, label.id)
        await (await tx.raw()).run(
            Sql("DELETE FROM ticket_labels WHERE label_id = :l"), {"l": label.id}
        )
        await tx.session.delete(label)


# ---------------------------------------------------------------- on tickets (any operator)


async def _ticket_and_label(tx: Tx, number: str, label_id: int) -> str:
    raw = await tx.raw()
    tid = None
    if isinstance(number, str) and len(number) <= 40 and "\x00" not in number:
        tid = await raw.scalar(_TICKET_ID, {"n": number})
    if tid is None:
        raise NotFound("no such ticket", "ticket_not_found")
    if await tx.session.get(Label, label_id) is None:
        raise NotFound("no such label", "label_not_found", field="label_id")
    return str(tid)


async def put_on(rt: Runtime, number: str, label_id: int) -> str:
    """Put a label on a ticket (again: nothing changes); returns the ticket's id."""
    async with rt.store.transaction() as tx:
        await tx.lock_scope(f"ticket:{number}")  # the cap below holds under concurrent puts
        tid = await _ticket_and_label(tx, number, label_id)
        raw = await tx.raw()
        if int(await raw.scalar(_COUNT_ON, {"t": tid}) or 0) >= MAX_PER_TICKET:
            on = await raw.scalar(
                Sql("SELECT 1 FROM ticket_labels WHERE ticket_id = :t AND label_id = :l"),
                {"t": tid, "l": label_id},
            )
            if on is None:
                raise Conflict(f"at most {MAX_PER_TICKET} labels on a ticket", "too_many_labels")
        if await raw.run(_PUT, {"t": tid, "l": label_id}):
            tx.emit("operators", {"type": "ticket_changed", "ticket_ref": tid})
        return tid


async def take_off(rt: Runtime, number: str, label_id: int) -> str:
    """Take a label off a ticket (not on it: nothing changes); returns the ticket's id."""
    async with rt.store.transaction() as tx:
        await tx.lock_scope(f"ticket:{number}")
        tid = await _ticket_and_label(tx, number, label_id)
        if await (await tx.raw()).run(_TAKE, {"t": tid, "l": label_id}):
            tx.emit("operators", {"type": "ticket_changed", "ticket_ref": tid})
        return tid


async def move_all(tx: Tx, from_id: str, into_id: str) -> None:
    """Merging (actions/merge.py): the labels of one ticket go to the other, in its
    transaction. (The cap per ticket may be passed here: no label is dropped.)"""
    raw = await tx.raw()
    await raw.run(_MOVE, {"f": from_id, "i": into_id})
    await raw.run(_DROP_ALL, {"f": from_id})
