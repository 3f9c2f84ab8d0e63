"""The shop owner's console: the widget's settings (admins), and the check a widget makes
on the shop's page before it draws its frame (anyone: it says only "allowed or not")."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response

from trustdesk.actions import routing
from trustdesk.actions import settings as shop
from trustdesk.api import schemas as s
from trustdesk.api.admin import ERRORS
from trustdesk.api.deps import AdminDep, RuntimeDep

router = APIRouter(prefix="/api/admin/settings", tags=["operator"])
public_router = APIRouter(prefix="/api/support", tags=["visitor"])

# A known unallowed site is written at most once a minute per process, however often its
# pages open the widget (the count is "about how many", the time is what the admin needs).
_RECORD_EVERY = 60.0
_recorded: dict[str, float] = {}


@router.get("/widget", response_model=s.WidgetSettingsOut, responses=ERRORS)
async def get_widget_settings(admin: AdminDep, rt: RuntimeDep) -> s.WidgetSettingsOut:
    """The widget's settings as the next widget open will use them."""
    return s.WidgetSettingsOut(settings=shop.current(rt).as_json())


@router.put("/widget", response_model=s.WidgetSettingsOut, responses=ERRORS)
async def put_widget_settings(
    admin: AdminDep, rt: RuntimeDep, body: Annotated[dict[str, Any], Body()]
) -> s.WidgetSettingsOut:
    """Change any subset of the settings; a bad value → 422 naming its field, nothing saved."""
    return s.WidgetSettingsOut(settings=(await shop.update(rt, body)).as_json())


@router.get("/routing", response_model=s.RoutingSettingsOut, responses=ERRORS)
async def get_routing_settings(admin: AdminDep, rt: RuntimeDep) -> s.RoutingSettingsOut:
    """Assignment and routing settings (actions/routing.py)."""
    return s.RoutingSettingsOut(settings=routing.current(rt).as_json())


@router.put("/routing", response_model=s.RoutingSettingsOut, responses=ERRORS)
async def put_routing_settings(
    admin: AdminDep, rt: RuntimeDep, body: Annotated[dict[str, Any], Body()]
) -> s.RoutingSettingsOut:
    """Change any subset; a bad value → 422 naming its field, nothing saved."""
    return s.RoutingSettingsOut(settings=(await routing.update(rt, body)).as_json())


@router.get("/blocked-origins", response_model=s.BlockedOriginsOut, responses=ERRORS)
async def blocked_origins(admin: AdminDep, rt: RuntimeDep) -> s.BlockedOriginsOut:
    """Sites that opened the widget without being allowed, the most recent first."""
    return s.BlockedOriginsOut(origins=await shop.blocked(rt))


@router.delete("/blocked-origins", response_model=s.Ok, responses=ERRORS)
async def dismiss_blocked_origin(
    admin: AdminDep, rt: RuntimeDep, origin: Annotated[str, Body(embed=True, max_length=255)]
) -> s.Ok:
    """Hide a site from the notice without allowing it (it comes back if it opens again)."""
    await shop.dismiss_blocked(rt, origin)
    return s.Ok()


@public_router.get("/site", response_model=s.SiteOut)
async def site_check(request: Request, response: Response, rt: RuntimeDep) -> s.SiteOut:
    """May the page that asks embed the chat? The browser sets the Origin header itself, so
    a page cannot claim another site's. Asked by the loader before it draws the frame: an
    unallowed site gets a clear notice instead of a frame the browser refuses to show."""
    response.headers["Access-Control-Allow-Origin"] = "*"  # the answer is no secret
    origin = (request.headers.get("origin") or "").rstrip("/")
    own = f"{request.url.scheme}://{request.headers.get('host', '')}"
    if not origin or shop.allowed(rt, origin, own):
        return s.SiteOut(allowed=True)
    now = time.monotonic()
    if now - _recorded.get(origin, -_RECORD_EVERY) >= _RECORD_EVERY:
        if len(_recorded) > 10_000:
            _recorded.clear()
        _recorded[origin] = now
        await shop.record_blocked(rt, origin)
    return s.SiteOut(allowed=False)
