"""The operator's HTTP API (session cookie; X-CSRF-Token on every state change)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from trustdesk.actions import canned, customers, operators, push, routing, tickets
from trustdesk.actions.errors import Conflict, Unauthorized
from trustdesk.actions.operators import operator_json
from trustdesk.api import schemas as s
from trustdesk.api.account import TotpRequiredOut, totp_required
from trustdesk.api.deps import (
    SESSION_COOKIE,
    AdminDep,
    AnonymousDep,
    OperatorDep,
    RuntimeDep,
    client_ip,
)
from trustdesk.api.limits import limits

router = APIRouter(prefix="/api/admin", tags=["operator"])
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": s.ErrorOut} for code in (400, 401, 403, 404, 409, 413, 422, 429)
}
# Row ids in paths are bounded like every other input (an unbounded int overflows SQLite).
RowId = Annotated[int, Path(ge=1, le=2**62)]


def _op(op: Any, online: bool | None = None) -> s.OperatorOut:
    return s.OperatorOut(**operator_json(op), online=online)


@router.post(
    "/login",
    response_model=s.LoginOut | TotpRequiredOut,
    responses=ERRORS,
    dependencies=[AnonymousDep],
)
async def login(
    body: s.LoginIn, request: Request, response: Response, rt: RuntimeDep
) -> s.LoginOut | TotpRequiredOut:
    """Email + password. Sets the HttpOnly session cookie; returns the CSRF token. With
    two-factor login on: no session yet, {"totp_required": true, "pending"} for
    /api/admin/login/totp (api/account.py)."""
    guard = limits(rt).login
    # Counted before the password is checked (api/login_guard.py says why and how).
    attempt = await guard.reserve(client_ip(request), body.email.strip().lower())
    try:
        op, sid, csrf = await operators.login(rt, body.email, body.password)
    except Unauthorized:
        guard.failed(attempt)
        raise
    except operators.SecondFactorNeeded as need:
        await guard.succeeded(attempt)
        return totp_required(rt, need.operator)
    await guard.succeeded(attempt)
    response.set_cookie(
        SESSION_COOKIE,
        sid,
        httponly=True,
        samesite="lax",
        secure=rt.settings.cookie_secure,
        max_age=rt.settings.session_ttl_hours * 3600,
        path="/",
    )
    return s.LoginOut(operator=_op(op), csrf_token=csrf)


@router.post("/logout", response_model=s.Ok, responses=ERRORS)
async def logout(auth: OperatorDep, response: Response, rt: RuntimeDep) -> s.Ok:
    await operators.logout(rt, auth.session_hash, auth.operator.id)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return s.Ok()


@router.get("/me", response_model=s.LoginOut, responses=ERRORS)
async def me(auth: OperatorDep) -> s.LoginOut:
    return s.LoginOut(operator=_op(auth.operator), csrf_token=auth.csrf_token)


# ------------------------------------------------------------------ tickets


@router.get("/support/tickets", response_model=s.TicketsOut, responses=ERRORS)
async def list_tickets(
    auth: OperatorDep,
    rt: RuntimeDep,
    status: Annotated[str, Query(pattern="^(open|closed|snoozed|waiting|all)$")] = "open",
    filter: Annotated[str | None, Query(pattern="^(all|mine|unassigned)$")] = None,  # noqa: A002
    q: Annotated[str | None, Query(max_length=100)] = None,
    label: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    priority: Annotated[str | None, Query(pattern="^(low|normal|high|urgent)$")] = None,
    team: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> s.TicketsOut:
    """Tickets, latest activity first (`status=waiting`: those waiting for an operator's
    answer, longest wait first), each with this operator's unread count. `label`:
    only those carrying that label (api/labels.py); `q` matches label names too."""
    rows = await tickets.ticket_summaries(
        rt,
        auth.operator.id,
        status=status,
        filter_=filter,
        q=q or None,
        label=label,
        priority=priority,
        team=team,
    )
    return s.TicketsOut(tickets=[s.TicketSummary(**r) for r in rows])


@router.get("/support/ticket/{ticketId}", response_model=s.TicketOut, responses=ERRORS)
async def open_ticket(ticketId: str, auth: OperatorDep, rt: RuntimeDep) -> s.TicketOut:  # noqa: N803
    """Open a ticket: the whole history (notes included); joins it once and marks it read."""
    summary, msgs = await tickets.open_ticket(rt, auth.operator, ticketId)
    return s.TicketOut(ticket=s.TicketSummary(**summary), messages=[s.Message(**m) for m in msgs])


@router.get("/support/ticket/{ticketId}/related", response_model=s.RelatedOut, responses=ERRORS)
async def related(ticketId: str, auth: OperatorDep, rt: RuntimeDep) -> s.RelatedOut:  # noqa: N803
    """The same customer's other tickets."""
    rows = await tickets.related_tickets(rt, ticketId)
    return s.RelatedOut(tickets=[s.RelatedTicket(**r) for r in rows])


@router.get("/report", response_model=s.ReportOut, responses=ERRORS)
async def report(
    auth: OperatorDep, rt: RuntimeDep, days: Annotated[int, Query(ge=1, le=365)] = 30
) -> s.ReportOut:
    """Tickets per day, median first response and resolution times, ratings."""
    return s.ReportOut(**await customers.report(rt, days))


@router.post("/support/reply", response_model=s.MessageOut, responses=ERRORS)
async def reply(body: s.ReplyIn, auth: OperatorDep, rt: RuntimeDep) -> s.MessageOut:
    msg = await tickets.reply(rt, auth.operator, body.ticketId, body.message, body.client_msg_id)
    return s.MessageOut(message=s.Message(**msg))


@router.post("/support/note", response_model=s.MessageOut, responses=ERRORS)
async def note(body: s.ReplyIn, auth: OperatorDep, rt: RuntimeDep) -> s.MessageOut:
    """A private note: operators only, never sent to the widget."""
    msg = await tickets.reply(
        rt, auth.operator, body.ticketId, body.message, body.client_msg_id, kind="note"
    )
    return s.MessageOut(message=s.Message(**msg))


@router.post("/support/system-message", response_model=s.MessageOut, responses=ERRORS)
async def system_message(
    body: s.SystemMessageIn, auth: OperatorDep, rt: RuntimeDep
) -> s.MessageOut:
    msg = await tickets.system_message(
        rt, auth.operator, body.ticketId, body.message, body.client_msg_id
    )
    return s.MessageOut(message=s.Message(**msg))


@router.post("/support/close/{ticketId}", response_model=s.TicketActionOut, responses=ERRORS)
async def close(ticketId: str, auth: OperatorDep, rt: RuntimeDep) -> s.TicketActionOut:  # noqa: N803
    t, msg = await tickets.close_ticket(rt, auth.operator, ticketId)
    return s.TicketActionOut(ticket=s.TicketSummary(**t), message=s.Message(**msg) if msg else None)


@router.post("/support/open/{ticketId}", response_model=s.TicketActionOut, responses=ERRORS)
async def reopen(ticketId: str, auth: OperatorDep, rt: RuntimeDep) -> s.TicketActionOut:  # noqa: N803
    t, msg = await tickets.reopen_ticket(rt, auth.operator, ticketId)
    return s.TicketActionOut(ticket=s.TicketSummary(**t), message=s.Message(**msg) if msg else None)


@router.post("/support/assign", response_model=s.AssignOut, responses=ERRORS)
async def assign(body: s.AssignIn, auth: OperatorDep, rt: RuntimeDep) -> s.AssignOut:
    t = await tickets.assign(rt, auth.operator, body.ticketId, body.operator_id)
    return s.AssignOut(ticket=s.TicketSummary(**t))


@router.post("/support/priority", response_model=s.AssignOut, responses=ERRORS)
async def priority(body: s.PriorityIn, auth: OperatorDep, rt: RuntimeDep) -> s.AssignOut:
    """Set a ticket's priority (low / normal / high / urgent)."""
    t = await routing.set_priority(rt, auth.operator, body.ticketId, body.priority)
    return s.AssignOut(ticket=s.TicketSummary(**t))


@router.post("/support/snooze", response_model=s.AssignOut, responses=ERRORS)
async def snooze(body: s.SnoozeIn, auth: OperatorDep, rt: RuntimeDep) -> s.AssignOut:
    """Snooze an open ticket until a time (ISO 8601 with offset); `until` null wakes it."""
    t = await routing.snooze(rt, auth.operator, body.ticketId, body.until)
    return s.AssignOut(ticket=s.TicketSummary(**t))


@router.post("/support/read", response_model=s.Ok, responses=ERRORS)
async def read(body: s.OperatorReadIn, auth: OperatorDep, rt: RuntimeDep) -> s.Ok:
    await tickets.mark_read_by_operator(rt, auth.operator, body.ticketId, body.last_read_id)
    return s.Ok()


# ------------------------------------------------------------------ operators


@router.get("/operators", response_model=s.OperatorsOut, responses=ERRORS)
async def list_ops(auth: OperatorDep, rt: RuntimeDep) -> s.OperatorsOut:
    online = await rt.presence.online("operator")
    ops = await operators.list_operators(rt)
    return s.OperatorsOut(operators=[_op(o, str(o.id) in online) for o in ops])


@router.post("/operators", status_code=201, response_model=s.OperatorOneOut, responses=ERRORS)
async def add_op(body: s.OperatorCreateIn, auth: AdminDep, rt: RuntimeDep) -> s.OperatorOneOut:
    op = await operators.create_operator(
        rt, body.email, body.name, body.password, body.role, body.gender
    )
    return s.OperatorOneOut(operator=_op(op))


@router.post("/operators/{operator_id}/gender", response_model=s.OperatorOneOut, responses=ERRORS)
async def set_gender(
    operator_id: RowId, body: s.GenderIn, auth: AdminDep, rt: RuntimeDep
) -> s.OperatorOneOut:
    """An operator's grammatical gender (female / male / null), for notices about them."""
    op = await operators.set_gender(rt, operator_id, body.gender)
    return s.OperatorOneOut(operator=_op(op))


@router.post("/operators/{operator_id}/role", response_model=s.OperatorOneOut, responses=ERRORS)
async def set_role(
    operator_id: RowId, body: s.RoleIn, auth: AdminDep, rt: RuntimeDep
) -> s.OperatorOneOut:
    """Make an operator an admin or an agent (409 `last_admin` for the last active admin)."""
    op = await operators.set_role(rt, operator_id, body.role)
    return s.OperatorOneOut(operator=_op(op))


@router.post(
    "/operators/{operator_id}/deactivate", response_model=s.OperatorOneOut, responses=ERRORS
)
async def deactivate(operator_id: RowId, auth: AdminDep, rt: RuntimeDep) -> s.OperatorOneOut:
    if operator_id == auth.operator.id:
        raise Conflict("you cannot deactivate yourself", "self_deactivate")
    op = await operators.set_active(rt, operator_id, False)
    return s.OperatorOneOut(operator=_op(op))


@router.post("/operators/{operator_id}/activate", response_model=s.OperatorOneOut, responses=ERRORS)
async def activate(operator_id: RowId, auth: AdminDep, rt: RuntimeDep) -> s.OperatorOneOut:
    op = await operators.set_active(rt, operator_id, True)
    return s.OperatorOneOut(operator=_op(op))


@router.post("/operators/{operator_id}/password", response_model=s.OperatorOneOut, responses=ERRORS)
async def reset_password(
    operator_id: RowId, body: s.PasswordIn, auth: AdminDep, rt: RuntimeDep
) -> s.OperatorOneOut:
    op = await operators.set_password(rt, operator_id, body.password)
    return s.OperatorOneOut(operator=_op(op))


# ------------------------------------------------------------------ canned responses


@router.get("/canned", response_model=s.CannedListOut, responses=ERRORS)
async def list_canned(auth: OperatorDep, rt: RuntimeDep) -> s.CannedListOut:
    rows = await canned.list_canned(rt)
    return s.CannedListOut(canned=[s.Canned(id=r.id, name=r.name, text=r.text) for r in rows])


@router.post("/canned", status_code=201, response_model=s.CannedOneOut, responses=ERRORS)
async def add_canned(body: s.CannedIn, auth: OperatorDep, rt: RuntimeDep) -> s.CannedOneOut:
    row = await canned.add_canned(rt, body.name, body.text)
    return s.CannedOneOut(canned=s.Canned(id=row.id, name=row.name, text=row.text))


@router.delete("/canned/{canned_id}", response_model=s.Ok, responses=ERRORS)
async def delete_canned(canned_id: RowId, auth: OperatorDep, rt: RuntimeDep) -> s.Ok:
    await canned.delete_canned(rt, canned_id)
    return s.Ok()


# ------------------------------------------------------------------ browser push


@router.get("/push/key", response_model=s.PushKeyOut, responses=ERRORS)
async def push_key(auth: OperatorDep, rt: RuntimeDep) -> s.PushKeyOut:
    """The VAPID public key for PushManager.subscribe (applicationServerKey)."""
    return s.PushKeyOut(public_key=push.public_key(rt.settings))


@router.post("/push/subscribe", response_model=s.Ok, responses=ERRORS)
async def push_subscribe(body: s.PushSubscribeIn, auth: OperatorDep, rt: RuntimeDep) -> s.Ok:
    """Store this browser's push subscription for the operator."""
    await push.subscribe(rt, auth.operator, body.endpoint, body.keys.p256dh, body.keys.auth)
    return s.Ok()


@router.post("/push/unsubscribe", response_model=s.Ok, responses=ERRORS)
async def push_unsubscribe(body: s.PushUnsubscribeIn, auth: OperatorDep, rt: RuntimeDep) -> s.Ok:
    await push.unsubscribe(rt, auth.operator, body.endpoint)
    return s.Ok()
