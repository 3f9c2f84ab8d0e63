"""The shop's widget settings: stored in the database, edited by admins, live in every process.

The environment gives the defaults for the first start (TRUSTDESK_ALLOWED_ORIGINS, ...); a
value saved in the dashboard wins from then on. Each process keeps the current settings in
memory (`LiveSettings`), so the hot paths (every page's Content-Security-Policy, every
operator socket's origin check) read them without a query. A save applies at once in the
process that made it and, through the hub's "settings" topic, in every other one.

Sites that open the widget without being allowed are recorded (bounded) so the dashboard
can tell an admin, who allows them with one click instead of reading a browser console.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, func, select

from trustdesk.actions import audit, routing, texts
from trustdesk.actions.errors import Invalid, RateLimited
from trustdesk.api.ratelimit import TokenBucket
from trustdesk.config import Settings
from trustdesk.store.models import AppSetting, BlockedOrigin, utcnow

if TYPE_CHECKING:
    from trustdesk.actions.runtime import Runtime
    from trustdesk.store.db import Store

log = logging.getLogger(__name__)

KEY = "widget"
TOPIC = "settings"  # every process reloads on it
MAX_ORIGINS = 50
MAX_BLOCKED = 100  # the most recent unallowed sites kept for the admins' notice
DEFAULT_COLOR = "#2563eb"
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")
_HOST = re.compile(
    r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
)
# New unallowed sites a process records per minute: a script forging Origin headers cannot
# flood the table or the admins' dashboards (hits on a known site are only counted).
_NEW_BLOCKED = TokenBucket(per_minute=10, burst=20)


@dataclass(frozen=True)
class WidgetSettings:
    title: str
    greeting: str
    color: str
    position: str
    allowed_origins: tuple[str, ...]
    away_message: str
    business_hours: str
    business_timezone: str

    @property
    def origins(self) -> frozenset[str]:
        return frozenset(self.allowed_origins)

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["allowed_origins"] = list(self.allowed_origins)
        return out


FIELDS = tuple(f.name for f in fields(WidgetSettings))


def defaults(settings: Settings) -> WidgetSettings:
    """What the environment says (the first start, or nothing saved yet)."""
    return WidgetSettings(
        title="",
        greeting=texts.GREETING,
        color=DEFAULT_COLOR,
        position="right",
        allowed_origins=tuple(sorted(settings.origins)),
        away_message=settings.away_message,
        business_hours=settings.business_hours,
        business_timezone=settings.business_timezone,
    )


# ----------------------------------------------------------------- validation


def normalize_origin(value: str) -> str | None:
    """ "https://Shop.example:8443/" -> "https://shop.example:8443"; None if not an origin."""
    if not isinstance(value, str) or len(value) > 255:
        return None
    try:
        parts = urlsplit(value.strip().rstrip("/"))
        port = parts.port
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        return None
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        return None
    if not _HOST.fullmatch(host) and not _is_ip(host):
        return None
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def _is_ip(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _text(name: str, limit: int) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise _bad(name, "must be a string")
        text = value.strip()
        if len(text) > limit:
            raise _bad(name, f"at most {limit} characters")
        return text

    return check


def _color(value: Any) -> str:
    if not isinstance(value, str) or not _COLOR.fullmatch(value.strip()):
        raise _bad("color", 'must be a colour like "#2563eb"')
    return value.strip().lower()


def _position(value: Any) -> str:
    if value not in ("right", "left"):
        raise _bad("position", 'must be "right" or "left"')
    return str(value)


def _origins(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > MAX_ORIGINS:
        raise _bad("allowed_origins", f"must be a list of at most {MAX_ORIGINS} origins")
    out: set[str] = set()
    for item in value:
        origin = normalize_origin(item)
        if origin is None:
            shown = str(item)[:80]
            raise _bad("allowed_origins", f"{shown!r} is not scheme://host[:port]")
        out.add(origin)
    return tuple(sorted(out))


def _hours(value: Any) -> str:
    from trustdesk.actions.customers import _parse_hours

    spec = _text("business_hours", 200)(value)
    try:
        spans = _parse_hours(spec)
    except (ValueError, IndexError):
        spans = None
    ok = spans is not None and all(0 <= a < b <= 24 * 60 for day in spans.values() for a, b in day)
    if not ok:
        raise _bad("business_hours", 'use "mon-fri 09:00-18:00; sat 10:00-14:00"')
    return spec


def _timezone(value: Any) -> str:
    name = _text("business_timezone", 64)(value)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        why = f"{name[:64]!r} is not a time zone like Europe/Moscow"
        raise _bad("business_timezone", why) from None
    return name


_CHECKS: dict[str, Callable[[Any], Any]] = {
    "title": _text("title", 60),
    "greeting": _text("greeting", 500),
    "color": _color,
    "position": _position,
    "allowed_origins": _origins,
    "away_message": _text("away_message", 500),
    "business_hours": _hours,
    "business_timezone": _timezone,
}


def _bad(name: str, why: str) -> Invalid:
    return Invalid(f"{name}: {why}", field=name)


def validate(current: WidgetSettings, patch: Any) -> WidgetSettings:
    """`current` with the keys of `patch` changed, every one checked; any error → Invalid
    naming its field (and nothing is applied)."""
    if not isinstance(patch, dict):
        raise Invalid("settings must be a JSON object")
    unknown = sorted(set(patch) - set(FIELDS))
    if unknown:
        raise _bad(str(unknown[0])[:40], "unknown setting")
    return replace(current, **{k: _CHECKS[k](v) for k, v in patch.items()})


def _from_stored(base: WidgetSettings, raw: str) -> WidgetSettings:
    """A stored value over the defaults, key by key; a key that no longer validates (e.g. a
    time zone the system lost) keeps its default rather than breaking the widget."""
    try:
        stored = json.loads(raw)
    except ValueError:
        return base
    out = base
    for key, value in stored.items() if isinstance(stored, dict) else ():
        with contextlib.suppress(Invalid):
            out = validate(out, {key: value})
    return out


# ----------------------------------------------------------------- the live copy


class LiveSettings:
    """This process's current widget settings, read synchronously by the hot paths."""

    def __init__(self, settings: Settings) -> None:
        self.base = defaults(settings)
        self.current = self.base
        # The owner's routing settings (actions/routing.py), a separate object.
        self.routing = routing.RoutingSettings()

    async def load(self, store: Store) -> WidgetSettings:
        async with store.read() as session:
            row = await session.get(AppSetting, KEY)
            raw = row.value if row is not None else None
            routing_row = await session.get(AppSetting, routing.KEY)
        self.current = self.base if raw is None else _from_stored(self.base, raw)
        self.routing = routing.from_stored(routing_row.value if routing_row else None)
        return self.current

    async def follow(self, rt: Runtime) -> None:
        """Reload whenever any process saves (the hub's "settings" topic), and every minute
        in case a wake-up was lost in a Redis outage."""
        async with rt.hub.subscribe([TOPIC]) as sub:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(sub.get(), timeout=60)
                try:
                    await self.load(rt.store)
                except Exception:  # pragma: no cover - storage down: keep the last copy
                    log.warning("could not reload the widget settings", exc_info=True)


def current(rt: Runtime) -> WidgetSettings:
    return rt.live.current


async def update(rt: Runtime, patch: Any) -> WidgetSettings:
    """Validate and store the changed keys; apply here at once, tell the other processes and
    the open dashboards. A site just allowed leaves the "not connected" list."""
    new = validate(rt.live.current, patch)
    async with rt.store.transaction() as tx:
        row = await tx.session.get(AppSetting, KEY)
        stored = json.loads(row.value) if row is not None else {}
        stored = stored if isinstance(stored, dict) else {}
        stored.update({k: new.as_json()[k] for k in patch})
        audit.record(
            tx, "settings.widget", KEY, audit.changes(rt.live.current.as_json(), new.as_json())
        )
        if row is None:
            tx.session.add(AppSetting(key=KEY, value=json.dumps(stored), updated_at=utcnow()))
        else:
            row.value = json.dumps(stored)
            row.updated_at = utcnow()
        if new.allowed_origins:
            await tx.session.execute(
                delete(BlockedOrigin).where(BlockedOrigin.origin.in_(new.allowed_origins))
            )
        tx.emit(TOPIC, {"type": "settings_changed"})
        tx.emit("operators", {"type": "settings_changed", "settings": new.as_json()})
    rt.live.current = new
    return new


# ----------------------------------------------------------------- sites not allowed


def allowed(rt: Runtime, origin: str, own_origin: str) -> bool:
    return origin == own_origin or origin in rt.live.current.origins


async def record_blocked(rt: Runtime, origin: str) -> None:
    """Count a site that opened the widget unallowed; a new one is kept (the newest
    MAX_BLOCKED) and shown to the admins' dashboards at once."""
    origin_n = normalize_origin(origin)
    if origin_n is None:
        return
    now = utcnow()
    async with rt.store.transaction() as tx:
        row = await tx.session.get(BlockedOrigin, origin_n)
        if row is not None:
            row.hits += 1
            row.last_seen = now
            return
        try:
            _NEW_BLOCKED.check("new")
        except RateLimited:
            return
        tx.session.add(BlockedOrigin(origin=origin_n, hits=1, first_seen=now, last_seen=now))
        await tx.session.flush()
        count = await tx.session.scalar(select(func.count()).select_from(BlockedOrigin))
        if (count or 0) > MAX_BLOCKED:
            oldest = (
                select(BlockedOrigin.origin)
                .order_by(BlockedOrigin.last_seen)
                .limit((count or 0) - MAX_BLOCKED)
            )
            await tx.session.execute(
                delete(BlockedOrigin).where(BlockedOrigin.origin.in_(oldest.scalar_subquery()))
            )
        tx.emit("operators", {"type": "origin_blocked", "origin": origin_n})


async def blocked(rt: Runtime) -> list[dict[str, Any]]:
    async with rt.store.read() as session:
        rows = (
            await session.scalars(
                select(BlockedOrigin).order_by(BlockedOrigin.last_seen.desc()).limit(MAX_BLOCKED)
            )
        ).all()
    return [
        {"origin": r.origin, "hits": r.hits, "last_seen": r.last_seen.isoformat()}
        for r in rows
        if r.origin not in rt.live.current.origins
    ]


async def dismiss_blocked(rt: Runtime, origin: str) -> None:
    async with rt.store.transaction() as tx:
        await tx.session.execute(delete(BlockedOrigin).where(BlockedOrigin.origin == origin))
        audit.record(tx, "origin.dismissed", origin)
