"""An operator's "Уведомления о пропущенных" (actions/escalation.py): opt-ins, Telegram
linking, and the test push of "Проверить push"."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from trustdesk.actions import escalation
from trustdesk.api import schemas as s
from trustdesk.api.deps import OperatorDep, RuntimeDep

router = APIRouter(prefix="/api/admin/account", tags=["operator"])
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": s.ErrorOut} for code in (400, 401, 403, 404, 409, 422, 429)
}


class Available(BaseModel):
    push: bool
    email: bool  # an SMTP server is configured
    telegram: bool  # a bot is configured


class AlertsOut(BaseModel):
    sound: bool  # sound and tab title at once
    push: bool  # after N minutes
    email: bool  # after 2N
    telegram: bool  # after 3N
    telegram_linked: bool
    email_address: str
    available: Available
    escalate_after_minutes: int  # N (0: escalation off)
    unit_seconds: float  # the length of one of those minutes (60; tests: shorter)


class AlertsIn(s.In):
    sound: bool | None = None
    push: bool | None = None
    email: bool | None = None
    telegram: bool | None = None


class TelegramLinkOut(BaseModel):
    code: str  # one-time, LINK_MINUTES valid
    command: str  # "/start <code>", to send to the bot by hand
    url: str  # https://t.me/<bot>?start=<code>
    bot: str
    expires_at: str


class PushTestIn(s.In):
    endpoint: str = Field(min_length=1, max_length=2048)


class PushTestOut(BaseModel):
    nonce: str  # the service worker posts it back to the page when the push arrives
    sent: bool  # the push service accepted it


@router.get("/alerts", response_model=AlertsOut, responses=ERRORS)
async def get_alerts(auth: OperatorDep, rt: RuntimeDep) -> AlertsOut:
    return AlertsOut(**await escalation.get_prefs(rt, auth.operator))


@router.put("/alerts", response_model=AlertsOut, responses=ERRORS)
async def set_alerts(body: AlertsIn, auth: OperatorDep, rt: RuntimeDep) -> AlertsOut:
    """Change some of the opt-ins (the keys given)."""
    patch = {k: v for k, v in body.model_dump().items() if v is not None}
    return AlertsOut(**await escalation.set_prefs(rt, auth.operator, patch))


@router.post("/alerts/telegram-link", response_model=TelegramLinkOut, responses=ERRORS)
async def telegram_link(auth: OperatorDep, rt: RuntimeDep) -> TelegramLinkOut:
    """ "Подключить Telegram": a one-time code; the bot's /start <code> links the chat."""
    return TelegramLinkOut(**await escalation.start_telegram_link(rt, auth.operator))


@router.delete("/alerts/telegram-link", response_model=AlertsOut, responses=ERRORS)
async def telegram_unlink(auth: OperatorDep, rt: RuntimeDep) -> AlertsOut:
    return AlertsOut(**await escalation.unlink_telegram(rt, auth.operator))


@router.post("/push-test", response_model=PushTestOut, responses=ERRORS)
async def push_test(body: PushTestIn, auth: OperatorDep, rt: RuntimeDep) -> PushTestOut:
    """ "Проверить push": a test push to this device's subscription only."""
    return PushTestOut(**await escalation.send_test_push(rt, auth.operator, body.endpoint))
