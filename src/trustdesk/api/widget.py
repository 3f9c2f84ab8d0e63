"""The visitor's HTTP API: the spec's two endpoints, made safe, plus a session and status."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Body, Query, Request

from trustdesk.actions import tickets, visitors
from trustdesk.api import schemas as s
from trustdesk.api.deps import RuntimeDep, VisitorDep, client_ip
from trustdesk.api.limits import limits

router = APIRouter(prefix="/api/support", tags=["visitor"])

ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": s.ErrorOut} for code in (400, 401, 404, 413, 422, 429)
}


@router.post("/session", status_code=201, response_model=s.SessionOut, responses=ERRORS)
async def create_session(
    request: Request, rt: RuntimeDep, body: Annotated[s.SessionIn | None, Body()] = None
) -> s.SessionOut:
    """A new anonymous visitor. The token is the visitor's only credential: keep it secret."""
    limits(rt).session_create.check(client_ip(request), "too many new sessions")
    token, visitor = await visitors.create_visitor(
        rt, request.headers.get("user-agent"), body.page_url if body else None
    )
    return s.SessionOut(token=token, visitor_id=visitor.id)


@router.post("/send-message", response_model=s.SendMessageOut, responses=ERRORS)
async def send_message(
    request: Request, body: s.SendMessageIn, visitor: VisitorDep, rt: RuntimeDep
) -> s.SendMessageOut:
    """The customer writes. Without ticketId: their open ticket, or a new one."""
    lim = limits(rt)
    lim.visitor_send.check(visitor.id, "too many messages, slow down")
    lim.ip_send.check(client_ip(request), "too many messages from this address")
    t, msg, _ = await tickets.send_customer_message(
        rt, visitor, body.message, body.ticketId, body.client_msg_id
    )
    return s.SendMessageOut(ticketId=t.number, message=s.Message(**msg))


@router.get("/messages/{ticketId}", response_model=s.MessagesOut, responses=ERRORS)
async def get_messages(
    ticketId: str,  # noqa: N803 - the spec's name
    visitor: VisitorDep,
    rt: RuntimeDep,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    wait: Annotated[int, Query(ge=0, le=30)] = 0,
) -> s.MessagesOut:
    """Messages after `after`. With `wait` (seconds): long poll until one exists."""
    if len(ticketId) > 40:
        ticketId = ticketId[:41]  # cannot exist; keeps the lookup bounded  # noqa: N806
    t, msgs = await tickets.visitor_messages(rt, visitor, ticketId, after)
    if not msgs and wait > 0:
        async with rt.hub.subscribe([f"ticket:{t.id}"]) as sub:
            t, msgs = await tickets.visitor_messages(rt, visitor, ticketId, after)
            deadline = asyncio.get_running_loop().time() + min(
                wait, rt.settings.long_poll_max_seconds
            )
            while not msgs:
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    break
                try:
                    ev = await asyncio.wait_for(sub.get(), left)
                except TimeoutError:
                    break
                if ev.get("type") in ("message", "resync"):
                    t, msgs = await tickets.visitor_messages(rt, visitor, ticketId, after)
    return s.MessagesOut(
        ticketId=t.number,
        status=t.status,
        messages=[s.Message(**m) for m in msgs],
    )


@router.post("/read", response_model=s.Ok, responses=ERRORS)
async def mark_read(body: s.VisitorReadIn, visitor: VisitorDep, rt: RuntimeDep) -> s.Ok:
    """The customer has read the ticket up to `last_read_id` (operators see a receipt)."""
    await tickets.mark_read_by_visitor(rt, visitor, body.ticketId, body.last_read_id)
    return s.Ok()


@router.get("/status", response_model=s.StatusOut)
async def status(rt: RuntimeDep) -> s.StatusOut:
    """How many operators are online right now (for the widget's header)."""
    return s.StatusOut(operators_online=len(await rt.presence.online("operator")))
