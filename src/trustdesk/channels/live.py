"""The channels follow their settings as saved in the dashboard (actions/channel_settings.py).

`start(rt)` loads the saved settings, starts the configured channels' consumers and follows
the hub's "channel_settings" topic (and a reload every minute, in case a wake-up was lost):
when the saved settings change, this process's consumers stop and start again with the new
ones. The checks behind the dashboard's "Подключить" / "Проверить" buttons live here too:
each really connects (getMe; an IMAP login; an SMTP login) and says what the server said.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import smtplib
import ssl
from dataclasses import dataclass

import aioimaplib  # type: ignore[import-untyped]

from trustdesk import channels
from trustdesk.actions import channel_settings
from trustdesk.actions import email as mail
from trustdesk.actions.runtime import Runtime
from trustdesk.channels import telegram
from trustdesk.channels.base import Stop
from trustdesk.config import Settings

log = logging.getLogger(__name__)

CHECK_SECONDS = 10.0
RELOAD_SECONDS = 60.0


class _Follower:
    """This process's consumers, restarted whenever the saved settings change."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.live = channel_settings.live(rt)
        self.raw = self.live.raw
        self.stop_consumers: Stop = channels.start(rt)
        self.task = asyncio.create_task(self.follow())

    async def restart(self) -> None:
        await self.stop_consumers()
        await telegram.close_bot(self.rt)
        self.raw, self.stop_consumers = self.live.raw, channels.start(self.rt)
        log.info("channels restarted with the new settings")

    async def follow(self) -> None:
        async with self.rt.hub.subscribe([channel_settings.TOPIC]) as sub:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(sub.get(), timeout=RELOAD_SECONDS)
                try:
                    await self.live.load(self.rt)
                    if self.live.raw != self.raw:
                        await self.restart()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.warning("could not reload the channel settings", exc_info=True)

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.stop_consumers()


async def start(rt: Runtime) -> Stop:
    """Load the saved settings, start the consumers, follow changes; returns the stop."""
    try:
        await channel_settings.live(rt).load(rt)
    except Exception:  # storage down at start: the environment's settings meanwhile
        log.warning("could not load the channel settings", exc_info=True)
    return _Follower(rt).stop


# ---------------------------------------------------------------- the checks


@dataclass
class Checked:
    ok: bool
    detail: str
    username: str | None = None


def _words(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[:300]


async def check_telegram(rt: Runtime, token: str) -> Checked:
    """getMe with this token: the bot's @username, or what the Bot API answered."""
    from telegram.error import InvalidToken, TelegramError

    if not token:
        return Checked(False, "no bot token")
    bot = telegram.make_bot(rt.settings.model_copy(update={"telegram_bot_token": token}))
    try:
        me = await asyncio.wait_for(bot.get_me(), CHECK_SECONDS)
    except InvalidToken:
        return Checked(False, "Telegram refused the token (Unauthorized)")
    except (TelegramError, TimeoutError) as exc:
        return Checked(False, f"{type(exc).__name__}: {_words(exc)}")
    finally:
        with contextlib.suppress(Exception):
            await bot.shutdown()
    return Checked(True, f"@{me.username}", me.username)


async def check_imap(settings: Settings) -> Checked:
    """Connect and log in (nothing is read)."""
    if not settings.imap_host:
        return Checked(False, "no IMAP host")
    server = f"{settings.imap_host}:{settings.imap_port}"
    client = aioimaplib.IMAP4(
        host=settings.imap_host,
        port=settings.imap_port,
        timeout=CHECK_SECONDS,
        ssl_context=ssl.create_default_context() if settings.imap_tls == "ssl" else None,
    )
    try:
        await asyncio.wait_for(client.wait_hello_from_server(), CHECK_SECONDS)
        resp = await asyncio.wait_for(
            client.login(settings.imap_user, settings.imap_password), CHECK_SECONDS
        )
        if resp.result != "OK":
            said = b" ".join(line for line in resp.lines if isinstance(line, bytes))
            words = said.decode(errors="replace").strip() or resp.result
            return Checked(False, f"{server}: {words}"[:300])
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.logout(), 2)
    except (OSError, TimeoutError, aioimaplib.Abort, aioimaplib.Error) as exc:
        return Checked(False, f"{server}: {type(exc).__name__}: {_words(exc)}")
    return Checked(True, f"{server}: login OK as {settings.imap_user}")


async def check_smtp(settings: Settings) -> Checked:
    """Connect, STARTTLS and log in as a reply would (no mail is sent)."""
    if not settings.smtp_host:
        return Checked(False, "no SMTP host")
    server = f"{settings.smtp_host}:{settings.smtp_port}"
    try:
        await asyncio.to_thread(mail.login_only, settings, CHECK_SECONDS)
    except smtplib.SMTPResponseException as exc:
        said = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else ""
        return Checked(False, f"{server}: {exc.smtp_code} {said}".strip()[:300])
    except (smtplib.SMTPException, OSError) as exc:
        return Checked(False, f"{server}: {type(exc).__name__}: {_words(exc)}")
    login = f" as {settings.smtp_user}" if settings.smtp_user else ""
    return Checked(True, f"{server}: login OK{login}")
