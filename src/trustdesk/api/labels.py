"""Labels and merging, for operators (/api/admin). Admins manage the label set; any
operator labels tickets and merges two tickets of one customer (actions/labels.py,
actions/merge.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from trustdesk.actions import labels, merge, tickets
from trustdesk.actions.errors import Invalid
from trustdesk.api import schemas as s
from trustdesk.api.admin import ERRORS, RowId
from trustdesk.api.deps import AdminDep, OperatorDep, RuntimeDep

router = APIRouter(prefix="/api/admin", tags=["labels"])
TicketNo = Annotated[str, Path(min_length=1, max_length=40)]


@router.get("/labels", response_model=s.LabelsOut, responses=ERRORS)
async def list_labels(auth: OperatorDep, rt: RuntimeDep) -> s.LabelsOut:
    """Every label by name, with the number of tickets it is on."""
    return s.LabelsOut(labels=[s.LabelCount(**x) for x in await labels.list_labels(rt)])


@router.post("/labels", status_code=201, response_model=s.LabelOneOut, responses=ERRORS)
async def create_label(body: s.LabelIn, auth: AdminDep, rt: RuntimeDep) -> s.LabelOneOut:
    """A new label (admins); its name is unique whatever its case (409 label_exists)."""
    return s.LabelOneOut(label=s.LabelCount(**await labels.create_label(rt, body.name, body.color)))


@router.patch("/labels/{label_id}", response_model=s.LabelOneOut, responses=ERRORS)
async def update_label(
    label_id: RowId, body: s.LabelPatchIn, auth: AdminDep, rt: RuntimeDep
) -> s.LabelOneOut:
    """Rename and/or recolour (admins)."""
    if body.name is None and body.color is None:
        raise Invalid("give a name or a color", "nothing_to_change", field="name")
    out = await labels.update_label(rt, label_id, body.name, body.color)
    return s.LabelOneOut(label=s.LabelCount(**out))


@router.delete("/labels/{label_id}", response_model=s.Ok, responses=ERRORS)
async def delete_label(label_id: RowId, auth: AdminDep, rt: RuntimeDep) -> s.Ok:
    """Delete a label (admins): it leaves every ticket it was on."""
    await labels.delete_label(rt, label_id)
    return s.Ok()


@router.post("/support/ticket/{ticketId}/labels", response_model=s.TicketOneOut, responses=ERRORS)
async def put_label(
    ticketId: TicketNo,  # noqa: N803
    body: s.TicketLabelIn,
    auth: OperatorDep,
    rt: RuntimeDep,
) -> s.TicketOneOut:
    """Put an existing label on the ticket (any operator); returns the ticket's summary."""
    tid = await labels.put_on(rt, ticketId, body.label_id)
    return s.TicketOneOut(
        ticket=s.TicketSummary(**await tickets.ticket_summary(rt, auth.operator.id, tid))
    )


@router.delete(
    "/support/ticket/{ticketId}/labels/{label_id}",
    response_model=s.TicketOneOut,
    responses=ERRORS,
)
async def take_label(
    ticketId: TicketNo,  # noqa: N803
    label_id: RowId,
    auth: OperatorDep,
    rt: RuntimeDep,
) -> s.TicketOneOut:
    tid = await labels.take_off(rt, ticketId, label_id)
    return s.TicketOneOut(
        ticket=s.TicketSummary(**await tickets.ticket_summary(rt, auth.operator.id, tid))
    )


@router.post("/support/merge", response_model=s.TicketOneOut, responses=ERRORS)
async def merge_tickets(body: s.MergeIn, auth: OperatorDep, rt: RuntimeDep) -> s.TicketOneOut:
    """Merge ticket `from` into `into` (both of one customer; else 409
    different_customers): its messages move (same ids, same order), both get a notice,
    `from` is closed. Returns the surviving ticket's summary."""
    tid = await merge.merge_tickets(rt, auth.operator, body.from_, body.into)
    return s.TicketOneOut(
        ticket=s.TicketSummary(**await tickets.ticket_summary(rt, auth.operator.id, tid))
    )
