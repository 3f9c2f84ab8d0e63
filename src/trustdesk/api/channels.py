"""Channels' inbound HTTP endpoints: Telegram's webhook (channels/telegram.py)."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request

from trustdesk.actions.errors import NotFound, Unauthorized
from trustdesk.api import schemas as s
from trustdesk.api.deps import RuntimeDep
from trustdesk.channels import telegram

router = APIRouter(tags=["inbound"])
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": s.ErrorOut} for code in (400, 401, 404, 413, 422)
}


@router.post(telegram.WEBHOOK_PATH, response_model=s.Ok, responses=ERRORS)
async def telegram_webhook(
    request: Request, rt: RuntimeDep, update: Annotated[dict[str, Any], Body()]
) -> s.Ok:
    """An update from Telegram, authenticated by the X-Telegram-Bot-Api-Secret-Token header
    given to setWebhook. Stored once (a redelivery is a duplicate); 200 so Telegram moves on."""
    settings = rt.settings
    if not settings.telegram_bot_token or not settings.telegram_webhook:
        raise NotFound("the Telegram webhook is not enabled", "not_found")
    sent = request.headers.get(telegram.SECRET_HEADER, "")
    if not hmac.compare_digest(sent.encode(), telegram.webhook_secret(settings).encode()):
        raise Unauthorized("wrong secret token", "telegram_unauthorized")
    await telegram.handle_update(rt, update)
    return s.Ok()
