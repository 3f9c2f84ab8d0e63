"""Settings → Каналы (admins): the Telegram bot, the IMAP inbox and SMTP, saved in the
database (actions/channel_settings.py) and applied live in every process (channels/live.py).

  GET  /api/admin/settings/channels               {"channels": {telegram, imap, smtp}}
  PUT  /api/admin/settings/channels               any subset of the sections; a section
       set to null goes back to the environment's values; 422 naming "<section>.<field>"
  POST /api/admin/settings/channels/{telegram|imap|smtp}/check
       the section's values as they would be with the body's changes (nothing is saved):
       getMe / an IMAP login / an SMTP login -> {"ok", "detail", "username"}

A new bot token is checked with getMe before it is saved (a wrong one is a 422), and the
bot's @username is kept to show.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body

from trustdesk.actions import channel_settings as cs
from trustdesk.actions.errors import Invalid
from trustdesk.api import schemas as s
from trustdesk.api.admin import ERRORS
from trustdesk.api.deps import AdminDep, RuntimeDep
from trustdesk.channels import live

router = APIRouter(prefix="/api/admin/settings/channels", tags=["operator"])


@router.get("", response_model=s.ChannelSettingsOut, responses=ERRORS)
async def get_channel_settings(admin: AdminDep, rt: RuntimeDep) -> s.ChannelSettingsOut:
    """The channels' settings in use; secrets only as "set" and their last 4 characters."""
    await cs.live(rt).load(rt)
    return s.ChannelSettingsOut(channels=cs.view(rt))


@router.put("", response_model=s.ChannelSettingsOut, responses=ERRORS)
async def put_channel_settings(
    admin: AdminDep, rt: RuntimeDep, body: Annotated[dict[str, Any], Body()]
) -> s.ChannelSettingsOut:
    """Save sections; applies at once in every process (the consumers restart)."""
    username = None
    tg = body.get("telegram")
    if isinstance(tg, dict) and tg.get("bot_token"):
        values = cs.validate("telegram", cs.section_values(rt, "telegram"), tg)
        checked = await live.check_telegram(rt, values["bot_token"])
        if not checked.ok:
            raise Invalid(f"telegram.bot_token: {checked.detail}", field="telegram.bot_token")
        username = checked.username
    return s.ChannelSettingsOut(channels=await cs.update(rt, body, telegram_username=username))


@router.post("/{section}/check", response_model=s.ChannelCheckOut, responses=ERRORS)
async def check_channel(
    admin: AdminDep,
    rt: RuntimeDep,
    section: Literal["telegram", "imap", "smtp"],
    body: Annotated[dict[str, Any] | None, Body()] = None,
) -> s.ChannelCheckOut:
    """Really connect with the section's settings (changed by the body, not saved)."""
    values = cs.validate(section, cs.section_values(rt, section), body or {})
    if section == "telegram":
        checked = await live.check_telegram(rt, values["bot_token"])
    else:
        update = {attr: values[name] for name, attr in cs.FIELDS[section].items()}
        candidate = rt.settings.model_copy(update=update)
        check = live.check_imap if section == "imap" else live.check_smtp
        checked = await check(candidate)
    return s.ChannelCheckOut(ok=checked.ok, detail=checked.detail, username=checked.username)
