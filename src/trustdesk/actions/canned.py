"""Canned responses: named texts an operator inserts with "/name"."""

from __future__ import annotations

from sqlalchemy import delete, select

from trustdesk.actions import audit
from trustdesk.actions.errors import Conflict, NotFound
from trustdesk.actions.runtime import Runtime
from trustdesk.store.models import CannedResponse


async def list_canned(rt: Runtime) -> list[CannedResponse]:
    async with rt.store.read() as session:
        rows = await session.scalars(select(CannedResponse).order_by(CannedResponse.name))
        return list(rows.all())


async def add_canned(rt: Runtime, name: str, text: str) -> CannedResponse:
    async with rt.store.transaction() as tx:
        exists = await tx.session.scalar(
            select(CannedResponse.id).where(CannedResponse.name == name)
        )
        if exists is not None:
            raise Conflict("a canned response with this name exists", "name_taken")
        row = CannedResponse(name=name, text=text.strip() or text)
        tx.session.add(row)
        await tx.session.flush()
        audit.record(tx, "canned.created", name, {"id": row.id})
    return row


async def delete_canned(rt: Runtime, canned_id: int) -> None:
    async with rt.store.transaction() as tx:
        res = await tx.session.execute(delete(CannedResponse).where(CannedResponse.id == canned_id))
        if not getattr(res, "rowcount", 0):
            raise NotFound("no such canned response")
        audit.record(tx, "canned.deleted", f"#{canned_id}")
