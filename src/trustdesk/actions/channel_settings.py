"""The channels' connection settings (Telegram bot, IMAP inbox, SMTP), set in the dashboard.

Until an admin saves a section, it comes from the environment (TRUSTDESK_TELEGRAM_*,
TRUSTDESK_IMAP_*, TRUSTDESK_SMTP_*); once saved, that whole section comes from the
database (app_settings, key "channels") and the environment's values are only the
defaults shown when editing; `reset` (a section set to null) goes back to them.

Every process applies the saved settings to its Runtime (`rt.settings` becomes the
environment's Settings with the saved fields over them; `rt.env_settings` keeps the
environment's own), so every reader of `rt.settings.smtp_*` (the channels, the
away-customer email, the password reset mail, the installation check) follows. A save
applies at once in the process that made it and, through the hub's "channel_settings"
topic, in every other one (channels/live.py restarts the consumers there).

Secrets (the bot token, the IMAP and SMTP passwords) are encrypted at rest with a key
derived from the server's secret key (as the operators' TOTP secrets): a database dump or
backup alone does not give them away. They are never returned: the API says whether one is
set and, for one of 8 characters or more, its last 4.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import logging
import re
from collections.abc import Callable
from email.utils import parseaddr
from typing import TYPE_CHECKING, Any

from trustdesk.actions import audit
from trustdesk.actions.errors import Invalid
from trustdesk.config import Settings
from trustdesk.store.models import AppSetting, utcnow

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

    from trustdesk.actions.runtime import Runtime
    from trustdesk.store.db import Store

log = logging.getLogger(__name__)

KEY = "channels"
TOPIC = "channel_settings"  # every process reloads on it
SECTIONS = ("telegram", "imap", "smtp")
# section -> {field in the API: attribute of Settings}
FIELDS: dict[str, dict[str, str]] = {
    "telegram": {"bot_token": "telegram_bot_token", "webhook": "telegram_webhook"},
    "imap": {
        "host": "imap_host",
        "port": "imap_port",
        "tls": "imap_tls",
        "user": "imap_user",
        "password": "imap_password",
        "folder": "imap_folder",
    },
    "smtp": {
        "host": "smtp_host",
        "port": "smtp_port",
        "starttls": "smtp_starttls",
        "user": "smtp_user",
        "password": "smtp_password",
        "from": "smtp_from",
    },
}
SECRETS = frozenset({"bot_token", "password"})
_ENC = "enc:"
_HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
)
_TOKEN = re.compile(r"[0-9]{1,20}:[A-Za-z0-9_-]{20,100}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

Section = dict[str, Any]


# ----------------------------------------------------------------- validation


def _bad(section: str, name: str, why: str) -> Invalid:
    return Invalid(f"{section}.{name}: {why}", field=f"{section}.{name}")


def _text(
    limit: int, *, empty: bool = True, secret: bool = False
) -> Callable[[str, str, Any], str]:
    def check(section: str, name: str, value: Any) -> str:
        if not isinstance(value, str):
            raise _bad(section, name, "must be a string")
        text = value if secret else value.strip()
        if len(text) > limit:
            raise _bad(section, name, f"at most {limit} characters")
        if not empty and not text:
            raise _bad(section, name, "must not be empty")
        if _CONTROL.search(text):
            raise _bad(section, name, "must not contain control characters")
        return text

    return check


def _host(section: str, name: str, value: Any) -> str:
    host = _text(253)(section, name, value).lower()
    if host and not _HOST.fullmatch(host):
        try:
            ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            raise _bad(section, name, "must be a host name or an IP address") from None
    return host


def _port(section: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise _bad(section, name, "must be a port number 1-65535")
    return int(value)


def _flag(section: str, name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _bad(section, name, "must be true or false")
    return value


def _tls(section: str, name: str, value: Any) -> str:
    if value not in ("ssl", "none"):
        raise _bad(section, name, 'must be "ssl" or "none"')
    return str(value)


def _token(section: str, name: str, value: Any) -> str:
    token = _text(130)(section, name, value)
    if token and not _TOKEN.fullmatch(token):
        raise _bad(section, name, "is not a bot token from @BotFather (123456:ABC…)")
    return token


def _sender(section: str, name: str, value: Any) -> str:
    text = _text(320, empty=False)(section, name, value)
    addr = parseaddr(text)[1]
    if "@" not in addr or len(addr) > 254:
        raise _bad(section, name, 'must be an address like "Shop <support@shop.example>"')
    return text


_CHECKS: dict[str, dict[str, Callable[[str, str, Any], Any]]] = {
    "telegram": {"bot_token": _token, "webhook": _flag},
    "imap": {
        "host": _host,
        "port": _port,
        "tls": _tls,
        "user": _text(254),
        "password": _text(512, secret=True),
        "folder": _text(200, empty=False),
    },
    "smtp": {
        "host": _host,
        "port": _port,
        "starttls": _flag,
        "user": _text(254),
        "password": _text(512, secret=True),
        "from": _sender,
    },
}


def validate(section: str, current: Section, patch: Any) -> Section:
    """`current` (a section's values) with the keys of `patch` changed, each one checked;
    a secret that is null or left out keeps its value. Any error → Invalid naming the field
    as "<section>.<field>"; nothing is applied."""
    if section not in SECTIONS:
        raise Invalid(f"{str(section)[:40]}: unknown channel", field=str(section)[:40])
    if not isinstance(patch, dict):
        raise Invalid(f"{section}: must be a JSON object or null", field=section)
    unknown = sorted(set(patch) - set(FIELDS[section]))
    if unknown:
        raise _bad(section, str(unknown[0])[:40], "unknown setting")
    out = dict(current)
    for key, value in patch.items():
        if value is None and key in SECRETS:
            continue
        out[key] = _CHECKS[section][key](section, key, value)
    return out


# ----------------------------------------------------------------- secrets at rest


def _fernet(settings: Settings) -> Fernet:
    from cryptography.fernet import Fernet  # (only installations with saved secrets)

    key = hashlib.sha256(b"trustdesk channels\0" + settings.resolved_secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def _seal(settings: Settings, value: str) -> str:
    return _ENC + _fernet(settings).encrypt(value.encode()).decode() if value else ""


def _open(settings: Settings, value: Any) -> str:
    if not isinstance(value, str) or not value.startswith(_ENC):
        return ""
    from cryptography.fernet import InvalidToken

    try:
        return _fernet(settings).decrypt(value[len(_ENC) :].encode()).decode()
    except InvalidToken:  # the secret key changed: the admin enters it again
        log.warning("a channel secret cannot be decrypted (was the secret key changed?)")
        return ""


# ----------------------------------------------------------------- stored <-> effective


def env_section(env: Settings, section: str) -> Section:
    return {name: getattr(env, attr) for name, attr in FIELDS[section].items()}


def _decode(env: Settings, raw: str | None) -> dict[str, Section]:
    """The stored sections (secrets decrypted), each over the environment's values key by
    key; a key that no longer validates keeps the environment's value."""
    try:
        stored = json.loads(raw) if raw else {}
    except ValueError:
        stored = {}
    out: dict[str, Section] = {}
    for section in SECTIONS:
        data = stored.get(section) if isinstance(stored, dict) else None
        if not isinstance(data, dict):
            continue
        values = env_section(env, section)
        for key in FIELDS[section]:
            if key not in data:
                continue
            value = _open(env, data[key]) if key in SECRETS else data[key]
            try:
                values = validate(section, values, {key: value})
            except Invalid:
                continue
        values["_meta"] = data.get("_meta") if isinstance(data.get("_meta"), dict) else {}
        out[section] = values
    return out


def _encode(env: Settings, sections: dict[str, Section]) -> str:
    doc: dict[str, Any] = {}
    for section, values in sections.items():
        doc[section] = {
            k: (_seal(env, v) if k in SECRETS else v) for k, v in values.items() if k != "_meta"
        }
        doc[section]["_meta"] = values.get("_meta") or {}
    return json.dumps(doc, ensure_ascii=False)


def effective(env: Settings, stored: dict[str, Section]) -> Settings:
    """The environment's Settings with the saved sections over them."""
    update: dict[str, Any] = {}
    for section, values in stored.items():
        for name, attr in FIELDS[section].items():
            update[attr] = values[name]
    if not update:
        return env
    merged = env.model_copy(update=update)
    # (resolved_secret_key is a cached property: keep the one already read)
    merged.__dict__.pop("resolved_secret_key", None)
    if "resolved_secret_key" in env.__dict__:
        merged.__dict__["resolved_secret_key"] = env.__dict__["resolved_secret_key"]
    return merged


def section_values(rt: Runtime, section: str) -> Section:
    """A section's values as in use now (saved, or the environment's)."""
    stored = live(rt).stored.get(section)
    if stored is not None:
        return {k: v for k, v in stored.items() if k != "_meta"}
    return env_section(env_of(rt), section)


def _secret_view(value: str) -> dict[str, Any]:
    return {"set": bool(value), "last4": value[-4:] if len(value) >= 8 else ""}


def view(rt: Runtime) -> dict[str, Any]:
    """What GET answers: every section's values, secrets as {"set", "last4"} only."""
    out: dict[str, Any] = {}
    for section in SECTIONS:
        stored = live(rt).stored.get(section)
        values = section_values(rt, section)
        shown: dict[str, Any] = {
            k: (_secret_view(v) if k in SECRETS else v) for k, v in values.items()
        }
        shown["source"] = "env" if stored is None else "dashboard"
        shown["enabled"] = bool(values["bot_token" if section == "telegram" else "host"])
        if section == "telegram":
            meta = (stored or {}).get("_meta") or {}
            shown["username"] = meta.get("username") if values["bot_token"] else None
        out[section] = shown
    return out


# ----------------------------------------------------------------- the live copy


class LiveChannels:
    """This process's saved channel settings, applied to its Runtime."""

    def __init__(self) -> None:
        self.stored: dict[str, Section] = {}
        self.raw: str | None = None

    async def load(self, rt: Runtime) -> bool:
        """Read the saved settings and apply them; True if they changed."""
        raw = await read_raw(rt.store)
        if raw == self.raw and rt.env_settings is not None:
            return False
        env = env_of(rt)
        rt.env_settings = env
        self.raw = raw
        self.stored = _decode(env, raw)
        rt.settings = effective(env, self.stored)
        return True


async def read_raw(store: Store) -> str | None:
    async with store.read() as session:
        row = await session.get(AppSetting, KEY)
        return None if row is None else row.value


def env_of(rt: Runtime) -> Settings:
    return rt.env_settings if rt.env_settings is not None else rt.settings


def live(rt: Runtime) -> LiveChannels:
    if rt.live_channels is None:
        rt.live_channels = LiveChannels()
    return rt.live_channels


def _audit_view(section: str, values: Section | None, env: Settings) -> dict[str, Any]:
    shown = dict(values) if values is not None else env_section(env, section)
    shown.pop("_meta", None)
    # (secret-named keys are listed as changed, their values never kept: audit.changes)
    out: dict[str, Any] = {k: v for k, v in shown.items() if k not in SECRETS}
    for k in SECRETS & set(shown):
        out[f"{k}"] = hashlib.sha256(str(shown[k]).encode()).hexdigest()  # compared only
    out["source"] = "env" if values is None else "dashboard"
    return out


async def update(
    rt: Runtime, patch: Any, *, telegram_username: str | None = None
) -> dict[str, Any]:
    """Save the sections of `patch` (`{"imap": {...}, "telegram": null, ...}`: null goes
    back to the environment's values). Each change is in the audit log (never a secret's
    value); every process applies it (the hub's "channel_settings" topic)."""
    if not isinstance(patch, dict) or not patch:
        raise Invalid("settings must be a non-empty JSON object")
    unknown = sorted(set(patch) - set(SECTIONS))
    if unknown:
        raise Invalid(f"{str(unknown[0])[:40]}: unknown channel", field=str(unknown[0])[:40])
    env = env_of(rt)
    await live(rt).load(rt)  # the newest saved copy first (another process may have saved)
    before = dict(live(rt).stored)
    after = dict(before)
    for section, body in patch.items():
        if body is None:
            after.pop(section, None)
            continue
        values = validate(section, section_values(rt, section), body)
        meta = dict((before.get(section) or {}).get("_meta") or {})
        if section == "telegram":
            if not values["bot_token"]:
                meta.pop("username", None)
            elif telegram_username is not None:
                meta["username"] = telegram_username
        values["_meta"] = meta
        after[section] = values
    raw = _encode(env, after)
    async with rt.store.transaction() as tx:
        row = await tx.session.get(AppSetting, KEY)
        if row is None:
            tx.session.add(AppSetting(key=KEY, value=raw, updated_at=utcnow()))
        else:
            row.value = raw
            row.updated_at = utcnow()
        for section in patch:
            diff = audit.changes(
                _audit_view(section, before.get(section), env),
                _audit_view(section, after.get(section), env),
            )
            if diff["changed"]:
                audit.record(tx, "settings.channels", section, diff)
        tx.emit(TOPIC, {"type": "channel_settings_changed"})
    await live(rt).load(rt)
    return view(rt)
