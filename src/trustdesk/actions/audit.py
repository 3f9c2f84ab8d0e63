"""The audit log: who did what to the shop's accounts, settings and data, for the admins.

One function writes an entry, `record(tx, action, target, details)`, inside the transaction
of the change it records: the entry and the change commit together or not at all. (A
failed login changes nothing, so `record_alone` gives it a transaction of its own.)

Who acts is ambient, like the request it comes from: the API sets it once per request
(`acting`, from api/deps.py: the operator and the client address); the CLI and background
tasks leave the default, "system". A login names its operator explicitly (`actor=`), since
nobody is signed in yet.

Entries never hold a secret: `details` keeps only short plain values, any key that names a
password, token, secret or code is dropped whatever its value, and the whole object is
bounded (MAX_DETAILS characters of JSON).
"""

from __future__ import annotations

import contextvars
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, select

from trustdesk.actions.errors import Invalid
from trustdesk.actions.runtime import Runtime
from trustdesk.store.db import Tx
from trustdesk.store.models import AuditEntry, Operator, utcnow

# The action codes (the dashboard translates them; the API filter accepts only these).
ACTIONS = (
    "login",
    "login.failed",
    "login.2fa",
    "login.2fa_failed",
    "logout",
    "password.reset_requested",
    "password.reset",
    "password.changed",
    "password.set",
    "2fa.enabled",
    "2fa.disabled",
    "settings.widget",
    "settings.security",
    "settings.routing",
    "settings.channels",
    "origin.dismissed",
    "operator.created",
    "operator.deactivated",
    "operator.activated",
    "operator.role",
    "customer.exported",
    "customer.erased",
    "canned.created",
    "canned.deleted",
    "label.created",
    "label.changed",
    "label.deleted",
    "team.created",
    "team.changed",
    "team.deleted",
    "routing_rule.created",
    "routing_rule.changed",
    "routing_rule.deleted",
    "webhook.created",
    "webhook.deleted",
    "token.created",
    "token.revoked",
)
MAX_DETAILS = 2000  # characters of JSON
MAX_VALUE = 200  # characters of one text value
MAX_ITEMS = 20  # keys of an object, items of a list
MAX_TARGET = 200
MAX_PAGE = 200
# A key matching this is never written, whatever its value.
SECRET_KEY = re.compile(r"pass|secret|token|code|key|hash|totp|pending|cookie|csrf", re.I)


@dataclass(frozen=True)
class Actor:
    operator_id: int | None = None
    name: str = "system"
    address: str = ""


SYSTEM = Actor()
_current: contextvars.ContextVar[Actor] = contextvars.ContextVar("audit_actor", default=SYSTEM)


def acting(actor: Actor) -> None:
    """Who the rest of this request (or task) acts as."""
    _current.set(actor)


def of(op: Operator, address: str = "") -> Actor:
    """The operator as the actor (the address: this request's, unless given)."""
    return Actor(op.id, op.display_name, address[:64])


def anonymous(address: str) -> Actor:
    """Nobody signed in yet (the login screen): known by the client address only."""
    return Actor(None, "anonymous", address[:64])


_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s.]+(?:\.[^@\s.]+)+")


def plausible_email(email: str) -> str:
    """What a failed login names: the address typed if it looks like one, else "?" (a
    password typed into the email field must not land in the log)."""
    email = email.strip().lower()
    return email if len(email) <= 254 and _EMAIL.fullmatch(email) else "?"


def current() -> Actor:
    return _current.get()


def safe_url(url: str) -> str:
    """A URL without its user, password, query or fragment (they may carry credentials)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"[:MAX_TARGET]


def _plain(value: Any, depth: int = 0) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return value if len(value) <= MAX_VALUE else value[: MAX_VALUE - 1] + "…"
    if depth >= 3:
        return "…"
    if isinstance(value, dict):
        return {
            str(k)[:60]: _plain(v, depth + 1)
            for k, v in list(value.items())[:MAX_ITEMS]
            if not SECRET_KEY.search(str(k))
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v, depth + 1) for v in list(value)[:MAX_ITEMS]]
    return _plain(str(value), depth)


def bounded(details: dict[str, Any] | None) -> str:
    """The details as JSON: secrets dropped, values shortened, at most MAX_DETAILS long."""
    text = json.dumps(_plain(details or {}), ensure_ascii=False, separators=(",", ":"))
    if len(text) > MAX_DETAILS and details and "changed" in details:  # values too long
        text = json.dumps({"changed": _plain(details["changed"]), "truncated": True})
    if len(text) > MAX_DETAILS:
        keys = list((details or {}).keys())[:MAX_ITEMS]
        text = json.dumps({"truncated": True, "fields": _plain(keys)}, ensure_ascii=False)
    return text[:MAX_DETAILS] if len(text) > MAX_DETAILS else text


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """{"changed": [keys], "old": {...}, "new": {...}} of the keys whose value differs;
    secret-named keys are listed as changed but their values are not kept."""
    keys = [k for k in after if before.get(k) != after.get(k)]
    plain = [k for k in keys if not SECRET_KEY.search(k)]
    return {
        "changed": keys,
        "old": {k: before.get(k) for k in plain},
        "new": {k: after.get(k) for k in plain},
    }


def record(
    tx: Tx,
    action: str,
    target: object = "",
    details: dict[str, Any] | None = None,
    *,
    actor: Actor | None = None,
) -> None:
    """Add the entry to this transaction (it commits with the change, or not at all)."""
    assert action in ACTIONS, action
    who = actor or _current.get()
    tx.session.add(
        AuditEntry(
            at=utcnow(),
            actor_id=who.operator_id,
            actor_name=who.name[:120],
            action=action,
            target=str(target)[:MAX_TARGET],
            details=bounded(details),
            address=(who.address or _current.get().address)[:64],
        )
    )


async def record_alone(
    rt: Runtime,
    action: str,
    target: object = "",
    details: dict[str, Any] | None = None,
    *,
    actor: Actor | None = None,
) -> None:
    """An entry for something that changed nothing (a failed login): its own transaction."""
    async with rt.store.transaction() as tx:
        record(tx, action, target, details, actor=actor)


def entry_json(e: AuditEntry) -> dict[str, Any]:
    try:
        details = json.loads(e.details)
    except ValueError:
        details = {}
    return {
        "id": e.id,
        "at": e.at.isoformat(),
        "actor_id": e.actor_id,
        "actor_name": e.actor_name,
        "action": e.action,
        "target": e.target,
        "details": details,
        "address": e.address,
    }


async def entries(
    rt: Runtime,
    limit: int = 50,
    before: int | None = None,
    action: str | None = None,
    actor: int | None = None,
) -> tuple[list[dict[str, Any]], int | None]:
    """Newest first; (entries, id to pass as `before` for the next page, or None).
    `action` is a code, or a prefix ending in "." ("login." for every kind of login)."""
    if not 1 <= limit <= MAX_PAGE:
        raise Invalid(f"limit must be 1-{MAX_PAGE}", "invalid_limit", field="limit")
    q = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit + 1)
    if before is not None:
        q = q.where(AuditEntry.id < before)
    if action:
        if action in ACTIONS:
            q = q.where(AuditEntry.action == action)
        elif action.endswith(".") and any(a.startswith(action) for a in ACTIONS):
            base = action[:-1]
            q = q.where((AuditEntry.action == base) | AuditEntry.action.startswith(action))
        else:
            raise Invalid("unknown action", "invalid_action", field="action")
    if actor is not None:
        q = q.where(AuditEntry.actor_id == actor)
    async with rt.store.read() as session:
        rows = list((await session.scalars(q)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return [entry_json(r) for r in rows], (rows[-1].id if more and rows else None)


async def purge(rt: Runtime, now: Any = None) -> int:
    """Drop entries older than TRUSTDESK_AUDIT_DAYS (0 keeps them forever)."""
    days = rt.settings.audit_days
    if days <= 0:
        return 0
    cutoff = (now or utcnow()) - timedelta(days=days)
    async with rt.store.transaction() as tx:
        result = await tx.session.execute(delete(AuditEntry).where(AuditEntry.at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
