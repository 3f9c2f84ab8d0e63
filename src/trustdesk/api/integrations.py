"""The shop's own systems and privacy: API tokens, webhooks, a customer's export and erasure,
and /metrics. `install(app)` wires it all; `start_background(rt)` runs its workers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from trustdesk.actions import api_tokens, metrics, privacy, retention, webhooks
from trustdesk.actions.runtime import Runtime
from trustdesk.api import schemas as s
from trustdesk.api.deps import (
    AdminDep,
    OperatorDep,
    RuntimeDep,
)

router = APIRouter(prefix="/api/admin", tags=["integrations"])
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": s.ErrorOut} for code in (400, 401, 403, 404, 409, 413, 422, 429)
}

Scope = Literal["tickets:read", "messages:write", "tickets:write"]
Event = Literal["ticket.created", "ticket.closed", "ticket.reopened", "message.created"]
VisitorId = Annotated[str, Path(min_length=1, max_length=64)]
TicketNumber = Annotated[str, Path(min_length=1, max_length=40)]


# ------------------------------------------------------------------ API token authentication


# ------------------------------------------------------------------ wire types


class OperatorRef(BaseModel):
    id: int
    name: str


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str = Field(description="the token's first characters, to recognise it")
    scopes: list[str]
    operator: OperatorRef | None = Field(description="the operator the token acts as")
    created_at: str
    last_used_at: str | None
    revoked: bool
    revoked_at: str | None


class TokenCreateIn(s.In):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[Scope] = Field(min_length=1, max_length=3)
    operator_id: int | None = Field(
        default=None, ge=1, le=2**62, description="act as this operator (default: yourself)"
    )


class TokenCreatedOut(BaseModel):
    token: TokenOut
    secret: str = Field(description="the token itself (td_...): shown this once, never again")


class TokenOneOut(BaseModel):
    token: TokenOut


class TokensOut(BaseModel):
    tokens: list[TokenOut]


class DeliveryCounts(BaseModel):
    pending: int
    ok: int
    failed: int


class WebhookOut(BaseModel):
    id: int
    url: str
    events: list[str]
    include_notes: bool
    active: bool
    description: str | None
    created_at: str
    deliveries: DeliveryCounts


class WebhookCreateIn(s.In):
    url: str = Field(min_length=1, max_length=2048, description="http(s) URL on an allowed host")
    events: list[Event] = Field(min_length=1, max_length=4)
    include_notes: bool = Field(default=False, description="also send private notes")
    description: str | None = Field(default=None, max_length=200)


class WebhookCreatedOut(BaseModel):
    webhook: WebhookOut
    secret: str = Field(description="HMAC-SHA256 key for X-TrustDesk-Signature: shown once")


class WebhooksOut(BaseModel):
    webhooks: list[WebhookOut]


class DeliveryOut(BaseModel):
    id: int
    webhook_id: int
    event: str
    status: Literal["pending", "ok", "failed"]
    attempts: int
    next_attempt_at: str | None
    last_status: int | None = Field(description="the receiver's last HTTP status")
    last_error: str | None
    created_at: str
    updated_at: str
    delivered_at: str | None
    payload: dict[str, Any] | None


class DeliveriesOut(BaseModel):
    deliveries: list[DeliveryOut]


class DeliveryOneOut(BaseModel):
    delivery: DeliveryOut


class ExportVisitor(BaseModel):
    """The visitor record: every stored column but the token's hash."""

    model_config = ConfigDict(extra="allow")
    id: str
    name: str | None
    email: str | None
    user_agent: str | None
    page_url: str | None
    created_at: str
    last_seen_at: str


class ExportTicket(BaseModel):
    """One ticket: its stored columns, its messages (notes included) and read receipt."""

    model_config = ConfigDict(extra="allow")
    ticketId: str  # noqa: N815
    status: str
    created_at: str
    updated_at: str
    assignee: OperatorRef | None
    customer_last_read_id: int
    messages: list[s.Message]


class ExportOut(BaseModel):
    exported_at: str
    visitor: ExportVisitor
    tickets: list[ExportTicket]
    records: dict[str, list[dict[str, Any]]] = Field(
        description="rows of other tables kept per ticket (e.g. files), by table"
    )


class Deleted(BaseModel):
    visitor_id: str
    tickets: int
    messages: int


class DeletedOut(BaseModel):
    ok: bool = True
    deleted: Deleted


# ------------------------------------------------------------------ API tokens (admin)


@router.get("/tokens", response_model=TokensOut, responses=ERRORS)
async def list_tokens(auth: AdminDep, rt: RuntimeDep) -> TokensOut:
    """Every API token (revoked ones too), newest first. The tokens themselves are not kept."""
    rows = await api_tokens.list_tokens(rt)
    return TokensOut(tokens=[TokenOut(**api_tokens.token_json(t, op)) for t, op in rows])


@router.post("/tokens", status_code=201, response_model=TokenCreatedOut, responses=ERRORS)
async def create_token(body: TokenCreateIn, auth: AdminDep, rt: RuntimeDep) -> TokenCreatedOut:
    """A new API token with the given scopes. `secret` is shown once: only its hash is stored.

    Scopes: tickets:read (GET /api/admin/support/*), messages:write (reply, note,
    system-message), tickets:write (close, open, assign, read)."""
    row, op, secret = await api_tokens.create_token(
        rt, auth.operator, body.name, list(body.scopes), body.operator_id
    )
    return TokenCreatedOut(token=TokenOut(**api_tokens.token_json(row, op)), secret=secret)


@router.delete("/tokens/{token_id}", response_model=TokenOneOut, responses=ERRORS)
async def revoke_token(
    token_id: Annotated[int, Path(ge=1, le=2**62)], auth: AdminDep, rt: RuntimeDep
) -> TokenOneOut:
    """Revoke a token: from now on it gets 401."""
    row, op = await api_tokens.revoke_token(rt, token_id)
    return TokenOneOut(token=TokenOut(**api_tokens.token_json(row, op)))


# ------------------------------------------------------------------ webhooks (admin)


@router.get("/webhooks", response_model=WebhooksOut, responses=ERRORS)
async def list_webhooks(auth: AdminDep, rt: RuntimeDep) -> WebhooksOut:
    """Every webhook with its delivery counts by status (secrets are not shown again)."""
    rows = await webhooks.list_webhooks(rt)
    return WebhooksOut(webhooks=[WebhookOut(**webhooks.webhook_json(h, st)) for h, st in rows])


@router.post("/webhooks", status_code=201, response_model=WebhookCreatedOut, responses=ERRORS)
async def create_webhook(
    body: WebhookCreateIn, auth: AdminDep, rt: RuntimeDep
) -> WebhookCreatedOut:
    """POST signed JSON to `url` on each chosen event from now on. The URL's host must be
    listed in TRUSTDESK_WEBHOOK_HOSTS. Each request carries X-TrustDesk-Event,
    X-TrustDesk-Delivery, X-TrustDesk-Timestamp and X-TrustDesk-Signature:
    sha256=<hex HMAC-SHA256 of the raw body, keyed with `secret`>."""
    hook = await webhooks.create_webhook(
        rt, auth.operator, body.url, list(body.events), body.include_notes, body.description
    )
    return WebhookCreatedOut(webhook=WebhookOut(**webhooks.webhook_json(hook)), secret=hook.secret)


@router.delete("/webhooks/{webhook_id}", response_model=s.Ok, responses=ERRORS)
async def delete_webhook(
    webhook_id: Annotated[int, Path(ge=1, le=2**62)], auth: AdminDep, rt: RuntimeDep
) -> s.Ok:
    """Delete a webhook and its delivery log; pending deliveries are dropped."""
    await webhooks.delete_webhook(rt, webhook_id)
    return s.Ok()


@router.get("/webhooks/{webhook_id}/deliveries", response_model=DeliveriesOut, responses=ERRORS)
async def list_deliveries(
    webhook_id: Annotated[int, Path(ge=1, le=2**62)],
    auth: AdminDep,
    rt: RuntimeDep,
    status: Annotated[str | None, Query(pattern="^(pending|ok|failed)$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> DeliveriesOut:
    """The delivery log, newest first: status, attempts, next attempt, the receiver's last
    HTTP status or error, and the payload."""
    rows = await webhooks.list_deliveries(rt, webhook_id, status, limit)
    return DeliveriesOut(deliveries=[DeliveryOut(**webhooks.delivery_json(d)) for d in rows])


@router.post(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}/retry",
    response_model=DeliveryOneOut,
    responses=ERRORS,
)
async def retry_delivery(
    webhook_id: Annotated[int, Path(ge=1, le=2**62)],
    delivery_id: Annotated[int, Path(ge=1, le=2**62)],
    auth: AdminDep,
    rt: RuntimeDep,
) -> DeliveryOneOut:
    """Send a delivery again now, with a fresh count of attempts."""
    d = await webhooks.retry_delivery(rt, webhook_id, delivery_id)
    _wake(rt)
    return DeliveryOneOut(delivery=DeliveryOut(**webhooks.delivery_json(d)))


# ------------------------------------------------------------------ a customer's data


@router.get("/visitors/{visitor_id}/export", response_model=ExportOut, responses=ERRORS)
async def export_visitor(visitor_id: VisitorId, auth: OperatorDep, rt: RuntimeDep) -> ExportOut:
    """Everything stored about one customer, as JSON: the visitor record, every ticket and
    every message (private notes included)."""
    return ExportOut(**await privacy.export_visitor(rt, visitor_id))


@router.get("/visitors/by-ticket/{ticketId}/export", response_model=ExportOut, responses=ERRORS)
async def export_by_ticket(
    ticketId: TicketNumber,  # noqa: N803
    auth: OperatorDep,
    rt: RuntimeDep,
) -> ExportOut:
    """The same export, for the customer who owns this ticket."""
    vid = await privacy.visitor_of_ticket(rt, ticketId)
    return ExportOut(**await privacy.export_visitor(rt, vid))


@router.delete("/visitors/{visitor_id}", response_model=DeletedOut, responses=ERRORS)
async def delete_visitor(visitor_id: VisitorId, auth: AdminDep, rt: RuntimeDep) -> DeletedOut:
    """Delete a customer for good (admin only): their tickets, messages, read receipts and
    queued webhook deliveries. Their widget token stops working."""
    out = await privacy.delete_visitor(rt, auth.operator, visitor_id)
    return DeletedOut(deleted=Deleted(**out))


@router.delete("/visitors/by-ticket/{ticketId}", response_model=DeletedOut, responses=ERRORS)
async def delete_by_ticket(
    ticketId: TicketNumber,  # noqa: N803
    auth: AdminDep,
    rt: RuntimeDep,
) -> DeletedOut:
    """Delete, for good, the customer who owns this ticket (admin only)."""
    vid = await privacy.visitor_of_ticket(rt, ticketId)
    out = await privacy.delete_visitor(rt, auth.operator, vid)
    return DeletedOut(deleted=Deleted(**out))


# ------------------------------------------------------------------ wiring


def _openapi_security(app: FastAPI) -> None:
    """Document both ways into the ticket endpoints: the session cookie and API tokens."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes["apiToken"] = {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "td_…",
            "description": "An API token from POST /api/admin/tokens, with scopes: "
            + "; ".join(f"{k}: {v}" for k, v in api_tokens.SCOPES.items())
            + ". No X-CSRF-Token needed.",
        }
        schemes["operatorSession"] = {
            "type": "apiKey",
            "in": "cookie",
            "name": "td_session",
            "description": "The dashboard's session cookie from POST /api/admin/login; "
            "state-changing calls also need the X-CSRF-Token header.",
        }
        for path, item in schema.get("paths", {}).items():
            for method, op in item.items():
                if not isinstance(op, dict):
                    continue
                scope = api_tokens.required_scope(method.upper(), path)
                if scope is not None:
                    op["security"] = [{"apiToken": [scope]}, {"operatorSession": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install(app: FastAPI) -> None:
    """Routes, the API-token override of the operator dependency, /metrics, OpenAPI docs."""
    settings = app.state.settings
    app.include_router(router)
    if settings.metrics:

        @app.get("/metrics", include_in_schema=False)
        async def prometheus_metrics() -> Response:
            body, content_type = metrics.render()
            return Response(body, media_type=content_type)

    _openapi_security(app)


_workers: dict[int, webhooks.WebhookWorker] = {}


def _wake(rt: Runtime) -> None:
    worker = _workers.get(id(rt))
    if worker is not None:
        worker.wake()


def start_background(rt: Runtime) -> Callable[[], Awaitable[None]]:
    """Start the webhook worker and the retention task; count committed messages and wake
    the worker after each commit. Returns the function that stops them."""
    worker = webhooks.WebhookWorker(rt)
    _workers[id(rt)] = worker
    previous = rt.store.on_messages

    async def on_messages(messages: list[dict[str, Any]]) -> None:
        metrics.messages_committed(messages)
        worker.wake()
        if previous is not None:
            await previous(messages)

    rt.store.on_messages = on_messages
    worker.start()
    housekeeping = asyncio.create_task(retention.run_periodic(rt))

    async def stop() -> None:
        housekeeping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await housekeeping
        await worker.stop()
        _workers.pop(id(rt), None)

    return stop
