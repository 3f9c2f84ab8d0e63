"""The Telegram channel: customers who write to the shop's bot get tickets in the same list.

Inbound: updates from the Bot API (python-telegram-bot), by long polling in the process
that holds the channel's lease (the cursor: the next update offset, moved only after the
update's messages were stored; Telegram redelivers whatever was not confirmed, and the
dedupe key chat:message_id stores it once) or, with TRUSTDESK_TELEGRAM_WEBHOOK, POSTed by
Telegram to /api/channels/telegram/webhook with the secret header checked
(api/channels.py). Private chats only; text, photos (the largest size), documents and voice
notes, files through the upload checks. A chat has no threads: a message goes to the
contact's open ticket, or starts one.

Outbound: operators' replies, their files (photos as photos, the rest as documents) and the
closing notice go back to the chat.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import re
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from trustdesk.actions import attachments
from trustdesk.actions.runtime import Runtime
from trustdesk.channels.base import Inbound, InFile, Lease, Sent, Stop
from trustdesk.channels.inbound import receive
from trustdesk.config import Settings
from trustdesk.store.db import storage_unavailable
from trustdesk.store.models import ChannelContact, Ticket, Visitor

if TYPE_CHECKING:  # python-telegram-bot is imported only where a bot is configured:
    from telegram import Bot, Update  # its 216 modules cost ~20 MB of RSS (docs/benchmarks.md)

log = logging.getLogger(__name__)

NAME = "telegram"
WEBHOOK_PATH = "/api/channels/telegram/webhook"
# (a header name, not a secret)
SECRET_HEADER = "x-telegram-bot-api-secret-token"  # noqa: S105

_bots: dict[int, Bot] = {}
_TOKEN_IN_URL = re.compile(r"/(file/)?bot[0-9]+(:|%3A)[A-Za-z0-9_-]+")


class _RedactToken(logging.Filter):
    """The bot token is in every Bot API URL, and httpx logs URLs: never in our logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "/bot" in text:
            record.msg, record.args = _TOKEN_IN_URL.sub(r"/\1bot<token>", text), ()
        return True


def _redact_logs() -> None:
    for name in ("httpx", "telegram"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactToken) for f in logger.filters):
            logger.addFilter(_RedactToken())


def webhook_secret(settings: Settings) -> str:
    """The secret_token given to setWebhook: derived from the server's key, never stored."""
    key = settings.resolved_secret_key.encode()
    token = settings.telegram_bot_token.encode()
    return hmac.new(key, b"telegram-webhook:" + token, hashlib.sha256).hexdigest()[:48]


def make_bot(settings: Settings) -> Bot:
    from telegram import Bot
    from telegram.request import HTTPXRequest

    _redact_logs()
    api = settings.telegram_api_url.rstrip("/")
    wait = settings.telegram_poll_seconds + 15
    return Bot(
        settings.telegram_bot_token,
        base_url=f"{api}/bot",
        base_file_url=f"{api}/file/bot",
        request=HTTPXRequest(connect_timeout=10, read_timeout=30, media_write_timeout=60),
        get_updates_request=HTTPXRequest(connect_timeout=10, read_timeout=wait),
    )


async def bot_for(rt: Runtime) -> Bot:
    """This process's bot (initialized once: getMe)."""
    bot = _bots.get(id(rt))
    if bot is None:
        bot = make_bot(rt.settings)
        await bot.initialize()
        _bots[id(rt)] = bot
    return bot


async def close_bot(rt: Runtime) -> None:
    bot = _bots.pop(id(rt), None)
    if bot is not None:
        with contextlib.suppress(Exception):
            await bot.shutdown()


def _name(first: str | None, last: str | None, username: str | None) -> str | None:
    full = " ".join(p for p in (first, last) if p).strip()
    return full or (f"@{username}" if username else None)


async def to_inbound(rt: Runtime, bot: Bot, update: Update) -> Inbound | None:
    """The update as the channel's Inbound; None for what is not a customer's message in a
    private chat (edits, groups, other bots)."""
    m = update.message
    if m is None or m.from_user is None or m.from_user.is_bot or m.chat.type != "private":
        return None
    if m.text and m.text.startswith("/start "):  # an operator linking their chat?
        from trustdesk.actions import escalation

        if await escalation.telegram_start(rt, m.chat.id, m.text):
            return None
    limit = rt.settings.max_upload_bytes
    files: list[InFile] = []
    refused: list[str] = []
    wanted: list[tuple[str, int | None, str, bool]] = []
    if m.photo:
        best = m.photo[-1]
        wanted.append((best.file_id, best.file_size, "photo.jpg", False))
    if m.document:
        d = m.document
        wanted.append((d.file_id, d.file_size, d.file_name or "document", False))
    if m.voice:
        wanted.append((m.voice.file_id, m.voice.file_size, "voice.ogg", True))
    for file_id, size, name, voice in wanted:
        if size is not None and size > limit:
            refused.append(f"{name} (file_too_large)")
            continue
        f = await bot.get_file(file_id)
        data = bytes(await f.download_as_bytearray())
        files.append(InFile(name, data, voice=voice))
    u = m.from_user
    return Inbound(
        channel=NAME,
        external_id=f"{m.chat.id}:{m.message_id}",
        address=str(m.chat.id),
        name=_name(u.first_name, u.last_name, u.username),
        text=m.text or m.caption or "",
        files=files,
        refused=refused,
        continue_open=True,
    )


async def handle_update(rt: Runtime, data: dict[str, Any]) -> str:
    """One update (a webhook's body, or one from getUpdates): stored once. Returns what
    receive() did, or "skipped"."""
    from telegram import Update

    bot = await bot_for(rt)
    update = Update.de_json(data, bot)
    if update is None:
        return "skipped"
    inbound = await to_inbound(rt, bot, update)
    if inbound is None:
        return "skipped"
    return (await receive(rt, inbound)).status


# ---------------------------------------------------------------- the consumer


class Poller:
    """Sets the webhook, or long-polls, in the process that holds the lease."""

    def __init__(self, rt: Runtime) -> None:
        s = rt.settings
        digest = hashlib.sha256(s.telegram_bot_token.encode()).hexdigest()[:40]
        self.rt = rt
        self.lease = Lease(rt, f"telegram:{digest}", max(30.0, s.telegram_poll_seconds * 2 + 10))
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.lease.release(), 5)
        await close_bot(self.rt)

    async def run(self) -> None:
        from telegram.error import TelegramError

        backoff = 1.0
        while True:
            try:
                if await self.lease.acquire():
                    await self.session()
                    backoff = 1.0
                else:
                    await asyncio.sleep(self.lease.ttl / 3)
                continue
            except asyncio.CancelledError:
                raise
            except TelegramError as exc:
                log.warning("telegram: %s: %s", type(exc).__name__, exc)
            except Exception as exc:
                if storage_unavailable(exc):
                    log.warning("telegram: storage unavailable, will retry")
                else:
                    log.exception("telegram pass failed")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)

    async def session(self) -> None:
        from telegram.error import TelegramError

        s = self.rt.settings
        bot = await bot_for(self.rt)
        if s.telegram_webhook:
            url = s.public_url.rstrip("/") + WEBHOOK_PATH
            try:
                await bot.set_webhook(
                    url, secret_token=webhook_secret(s), allowed_updates=["message"]
                )
                log.info("telegram: webhook set")
                while True:  # Telegram POSTs; keep the lease meanwhile
                    await asyncio.sleep(self.lease.ttl / 3)
                    if not await self.lease.acquire():
                        return
            except TelegramError as exc:
                log.warning("telegram: webhook could not be set (%s): long polling", exc)
        await bot.delete_webhook()
        while await self.lease.acquire():
            offset = int((await self.lease.cursor()).get("offset", 0)) or None
            updates = await bot.get_updates(
                offset=offset, timeout=s.telegram_poll_seconds, allowed_updates=["message"]
            )
            for u in updates:
                inbound = await to_inbound(self.rt, bot, u)
                if inbound is not None:
                    result = await receive(self.rt, inbound)  # raises if not stored
                    log.info("telegram: update %s %s", u.update_id, result.status)
                if not await self.lease.save_cursor({"offset": u.update_id + 1}):
                    return


# ---------------------------------------------------------------- outbound


async def send_text(rt: Runtime, chat_id: int, text: str) -> None:
    """A plain message from the shop's bot to a chat (an operator's: actions/escalation.py)."""
    bot = await bot_for(rt)
    await bot.send_message(chat_id, text[:4096])


async def send(
    rt: Runtime, ticket: Ticket, visitor: Visitor, message: dict[str, Any]
) -> Sent | None:
    """Send one operator message (or the closing notice) to the customer's chat; returns
    its chat:message id. Raises what the Bot API said when it refused."""
    async with rt.store.read() as session:
        chat = await session.scalar(
            select(ChannelContact.address).where(
                ChannelContact.channel == NAME, ChannelContact.visitor_id == visitor.id
            )
        )
    if chat is None:
        return None
    bot = await bot_for(rt)
    attachment = message.get("attachment")
    text = message["message"]
    if message["kind"] in ("file", "voice") and attachment:
        a, data = await attachments.read_for_operator(rt, attachment["id"])
        caption = text if text and text != a.name else None
        if a.kind == "image":
            sent = await bot.send_photo(chat, photo=data, filename=a.name, caption=caption)
        else:
            sent = await bot.send_document(chat, document=data, filename=a.name, caption=caption)
    else:
        sent = await bot.send_message(chat, text)
    return Sent(f"{chat}:{sent.message_id}")


class TelegramChannel:
    name = NAME

    def enabled(self, settings: Settings) -> bool:
        return bool(settings.telegram_bot_token)

    def start(self, rt: Runtime) -> Stop | None:
        poller = Poller(rt)
        poller.start()
        return poller.stop

    async def send(
        self, rt: Runtime, ticket: Ticket, visitor: Visitor, message: dict[str, Any]
    ) -> Sent | None:
        return await send(rt, ticket, visitor, message)


CHANNEL = TelegramChannel()
