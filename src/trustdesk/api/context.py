"""The customer beside the chat: their name (set by an operator) and the shop's orders
(actions/context.py), plus the demo storefront's side of the order hook."""

from __future__ import annotations

import hmac
import json
import time
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from trustdesk.actions import context, customers, tickets
from trustdesk.actions.errors import Invalid, NotFound, Unauthorized
from trustdesk.api import schemas as s
from trustdesk.api.admin import ERRORS
from trustdesk.api.deps import OperatorDep, RuntimeDep

router = APIRouter(prefix="/api/admin", tags=["operator"])


class CustomerNameIn(s.In):
    # Bounded here for the body; the 100-character rule is checked after trimming.
    name: str = Field(max_length=400)


class Order(BaseModel):
    number: str
    status: str | None = None
    total: str | None = None
    currency: str | None = None
    date: str | None = None
    url: str | None = None


class ContextOut(BaseModel):
    orders: list[Order]
    error: str | None = Field(description="why the shop's hook gave nothing; null if it did")


@router.patch("/support/ticket/{ticketId}/customer", response_model=s.AssignOut, responses=ERRORS)
async def rename_customer(
    ticketId: str,  # noqa: N803
    body: CustomerNameIn,
    auth: OperatorDep,
    rt: RuntimeDep,
) -> s.AssignOut:
    """Any operator sets the customer's name ("" clears it: the email or "Гость #N" shows)."""
    ticket_id = await customers.rename_customer(rt, ticketId, body.name)
    summary = await tickets.ticket_summary(rt, auth.operator.id, ticket_id)
    return s.AssignOut(ticket=s.TicketSummary(**summary))


@router.get("/support/ticket/{ticketId}/context", response_model=ContextOut, responses=ERRORS)
async def ticket_context(ticketId: str, auth: OperatorDep, rt: RuntimeDep) -> ContextOut:  # noqa: N803
    """The shop's orders of a signed-in customer (TRUSTDESK_CONTEXT_URL): never a 5xx;
    a slow or failing hook is an `error` after at most 2 s."""
    return ContextOut(**await context.ticket_context(rt, ticketId))


# ------------------------------------------------------------------ the demo storefront

demo_router = APIRouter(prefix="/demo/api", include_in_schema=False)

DEMO_USER = {"id": "demo-maria", "name": "Мария Петрова", "email": "maria@example.com"}
_DEMO_ORDERS = [
    ("TS-10482", "В пути", "12990.00", "2026-12-03"),
    ("TS-10317", "Доставлен", "7490.00", "2026-11-18"),
    ("TS-10055", "Возврат оформлен", "1590.00", "2026-10-02"),
]


@demo_router.get("/customer")
async def demo_customer(rt: RuntimeDep) -> dict[str, Any]:
    """The demo shop's "logged-in" customer, signed as a shop's server would sign it. Only
    with TRUSTDESK_DEMO_CUSTOMER=true: otherwise anyone could become this customer."""
    secret = rt.settings.identity_secret
    if not (rt.settings.demo_customer and secret):
        raise NotFound("the demo customer is off", "demo_off")
    expires = int(time.time()) + 3600
    sig = customers.identity_signature(secret, DEMO_USER["id"], expires)
    return {**DEMO_USER, "expires": expires, "hash": sig}


@demo_router.post("/orders")
async def demo_orders(request: Request, rt: RuntimeDep) -> dict[str, Any]:
    """The shop's end of the order hook, as a shop would write it: check the signature and
    its freshness, then answer the user's orders (the demo user has three)."""
    secret = rt.settings.identity_secret
    if not secret:
        raise NotFound("no identity secret", "demo_off")
    body = await request.body()
    given = request.headers.get("x-trustdesk-signature", "")
    if not hmac.compare_digest(context.sign(secret, body).encode(), given.encode()):
        raise Unauthorized("bad signature", "bad_signature")
    try:
        data = json.loads(body)
        user_id, ts = str(data["user_id"]), int(data["ts"])
    except (ValueError, KeyError, TypeError) as exc:
        raise Invalid("expected {user_id, ts}", "bad_body") from exc
    if abs(time.time() - ts) > 300:
        raise Unauthorized("stale request", "stale")
    if user_id != DEMO_USER["id"]:
        return {"orders": []}
    base = rt.settings.public_url.rstrip("/")
    return {
        "orders": [
            {
                "number": n,
                "status": st,
                "total": total,
                "currency": "RUB",
                "date": d,
                "url": f"{base}/#order-{n}",
            }
            for n, st, total, d in _DEMO_ORDERS
        ]
    }
