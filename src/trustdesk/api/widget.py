"""The visitor's HTTP API: the spec's two endpoints, made safe, plus a session and status."""

from __future__ import annotations

import asyncio
import hmac
from typing import Annotated

from fastapi import APIRouter, Body, Query, Request

from trustdesk.actions import customers, email, routing, tickets, visitors
from trustdesk.actions.errors import Unauthorized
from trustdesk.api import schemas as s
from trustdesk.api.deps import RuntimeDep, VisitorDep, client_ip
from trustdesk.api.limits import limits

router = APIRouter(prefix="/api/support", tags=["visitor"])

ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": s.ErrorOut} for code in (400, 401, 403, 404, 409, 413, 422, 429)
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
    ip = client_ip(request)
    lim.ip_send.check(ip, "too many messages from this address")
    hints = routing.clean_hints(body.page_url, body.team)
    t, msg, *_ = await tickets.send_customer_message(
        rt, visitor, body.message, body.ticketId, body.client_msg_id, body.new_ticket, ip, hints
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
    """Operators online, business hours and the away message (for the widget's header)."""
    online = len(await rt.presence.online("operator"))
    shop = rt.live.current
    hours = customers.within_hours(shop)
    return s.StatusOut(
        operators_online=online,
        within_hours=hours,
        away_message=None if online and hours else shop.away_message,
        greeting=shop.greeting,
        email_enabled=email.enabled(rt.settings),
    )


@router.post("/identify", response_model=s.IdentifyOut, responses=ERRORS)
async def identify(body: s.IdentifyIn, visitor: VisitorDep, rt: RuntimeDep) -> s.IdentifyOut:
    """A signed identity from the shop (data-user-id, data-user-expires, data-user-hash).

    Valid: this browser joins the customer and sees all their tickets, on any device.
    Wrong or expired: 401, and the visitor stays anonymous (never half-trusted)."""
    v = await customers.identify(
        rt, visitor, body.user_id, body.expires, body.hash, body.name, body.email
    )
    return s.IdentifyOut(verified=True, user_id=v.external_id or body.user_id)


@router.get("/tickets", response_model=s.VisitorTicketsOut, responses=ERRORS)
async def my_tickets(visitor: VisitorDep, rt: RuntimeDep) -> s.VisitorTicketsOut:
    """The customer's tickets, open first."""
    rows = await customers.visitor_tickets(rt, visitor)
    return s.VisitorTicketsOut(tickets=[s.VisitorTicket(**r) for r in rows])


@router.post("/contact", response_model=s.Ok, responses=ERRORS)
async def contact(body: s.ContactIn, visitor: VisitorDep, rt: RuntimeDep) -> s.Ok:
    """Leave an email (when nobody is there): replies then also arrive by email."""
    await customers.set_contact(rt, visitor, body.email, body.name)
    return s.Ok()


@router.post("/rate", response_model=s.RateOut, responses=ERRORS)
async def rate(body: s.RateIn, visitor: VisitorDep, rt: RuntimeDep) -> s.RateOut:
    """ "How did we do?" on a closed ticket: 1-5 and an optional comment."""
    out = await customers.rate(rt, visitor, body.ticketId, body.score, body.comment)
    return s.RateOut(**out)


@router.post("/transcript", response_model=s.TranscriptOut, responses=ERRORS)
async def transcript(
    request: Request, body: s.TranscriptIn, visitor: VisitorDep, rt: RuntimeDep
) -> s.TranscriptOut:
    """Email the conversation to the customer."""
    limits(rt).transcript.check(visitor.id, "a transcript was sent a moment ago")
    sent_to = await email.send_transcript(rt, visitor, body.ticketId, body.email)
    return s.TranscriptOut(sent_to=sent_to)


inbound_router = APIRouter(prefix="/api/inbound", tags=["inbound"])


@inbound_router.post("/email", response_model=s.SendMessageOut, responses=ERRORS)
async def inbound_email(
    request: Request, body: s.InboundEmailIn, rt: RuntimeDep
) -> s.SendMessageOut:
    """A parsed inbound email (from the mail provider's webhook), authenticated by the
    X-TrustDesk-Inbound-Secret header: the customer's reply lands in its ticket."""
    secret = rt.settings.inbound_secret
    sent = request.headers.get("x-trustdesk-inbound-secret", "")
    if not secret or not hmac.compare_digest(sent.encode(), secret.encode()):
        raise Unauthorized("inbound secret required", "inbound_unauthorized")
    t, msg = await email.inbound(rt, body.to, body.from_, body.text)
    return s.SendMessageOut(ticketId=t.number, message=s.Message(**msg))
