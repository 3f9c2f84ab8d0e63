"""API tokens for the shop's own systems: scoped, revocable, shown once, stored as sha256.

A token acts as one operator (its replies carry that operator's name) and is accepted as
`Authorization: Bearer td_...` on the operator's ticket endpoints (/api/admin/support/*),
each of which needs one scope. No cookie is involved, so no CSRF token either.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from trustdesk.actions import audit
from trustdesk.actions.errors import Invalid, NotFound
from trustdesk.actions.messages import iso
from trustdesk.actions.runtime import Runtime
from trustdesk.store.models import ApiToken, Operator, utcnow

TOKEN_PREFIX = "td_"  # noqa: S105 - a prefix, not a secret
SCOPES: dict[str, str] = {
    "tickets:read": "list tickets and read their messages (GET /api/admin/support/*)",
    "messages:write": "reply, add notes, system messages and files "
    "(POST .../reply, note, system-message, upload)",
    "tickets:write": "close, reopen, assign and mark read (POST .../close, open, assign, read)",
}
SUPPORT_PREFIX = "/api/admin/support/"
_MESSAGE_ROUTES = frozenset({"reply", "note", "system-message", "upload"})
# last_used_at is written at most this often per token.
_TOUCH_EVERY = timedelta(minutes=1)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def required_scope(method: str, path: str) -> str | None:
    """The scope a call needs, or None where API tokens are not accepted at all."""
    if not path.startswith(SUPPORT_PREFIX):
        return None
    if method in ("GET", "HEAD"):
        return "tickets:read"
    route = path[len(SUPPORT_PREFIX) :].split("/", 1)[0]
    return "messages:write" if route in _MESSAGE_ROUTES else "tickets:write"


def scopes_of(token: ApiToken) -> list[str]:
    return [s for s in token.scopes.split(",") if s]


def token_json(token: ApiToken, operator: Operator | None) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "prefix": token.prefix,
        "scopes": scopes_of(token),
        "operator": {"id": operator.id, "name": operator.display_name} if operator else None,
        "created_at": iso(token.created_at),
        "last_used_at": iso(token.last_used_at) if token.last_used_at else None,
        "revoked": token.revoked_at is not None,
        "revoked_at": iso(token.revoked_at) if token.revoked_at else None,
    }


async def create_token(
    rt: Runtime,
    actor: Operator,
    name: str,
    scopes: list[str],
    operator_id: int | None = None,
) -> tuple[ApiToken, Operator, str]:
    """Returns (row, the operator it acts as, the token). The token is never shown again."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise Invalid("name must have 1-100 characters", "invalid_name")
    wanted = sorted(set(scopes))
    unknown = [s for s in wanted if s not in SCOPES]
    if not wanted or unknown:
        raise Invalid(f"scopes must be a non-empty subset of {', '.join(SCOPES)}", "invalid_scopes")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    async with rt.store.transaction() as tx:
        as_op = await tx.session.get(Operator, operator_id if operator_id else actor.id)
        if as_op is None or not as_op.active:
            raise NotFound("no such active operator", "operator_not_found")
        row = ApiToken(
            name=name,
            token_hash=hash_token(secret),
            prefix=secret[:10],
            scopes=",".join(wanted),
            operator_id=as_op.id,
            created_by=actor.id,
            created_at=utcnow(),
        )
        tx.session.add(row)
        audit.record(tx, "token.created", name, {"scopes": wanted, "acts_as": as_op.email})
    return row, as_op, secret


async def list_tokens(rt: Runtime) -> list[tuple[ApiToken, Operator | None]]:
    async with rt.store.read() as session:
        rows = (
            await session.execute(
                select(ApiToken, Operator)
                .outerjoin(Operator, Operator.id == ApiToken.operator_id)
                .order_by(ApiToken.id.desc())
            )
        ).all()
    return [(t, op) for t, op in rows]


async def revoke_token(rt: Runtime, token_id: int) -> tuple[ApiToken, Operator | None]:
    """Revoked at once, for every process: each call looks the token up again."""
    async with rt.store.transaction() as tx:
        row = await tx.session.get(ApiToken, token_id)
        if row is None:
            raise NotFound("no such token", "token_not_found")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            audit.record(tx, "token.revoked", row.name, {"id": row.id})
        op = await tx.session.get(Operator, row.operator_id)
    return row, op


async def authenticate_token(rt: Runtime, token: str) -> tuple[ApiToken, Operator] | None:
    """The token and its operator, or None if unknown, revoked, or its operator is inactive."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
        return None
    h = hash_token(token)
    async with rt.store.read() as session:
        row = (
            await session.execute(
                select(ApiToken, Operator)
                .join(Operator, Operator.id == ApiToken.operator_id)
                .where(ApiToken.token_hash == h)
            )
        ).first()
    if row is None:
        return None
    tok, op = row
    if tok.revoked_at is not None or not op.active:
        return None
    now = utcnow()
    if tok.last_used_at is None or now - tok.last_used_at > _TOUCH_EVERY:
        async with rt.store.transaction() as tx:
            fresh = await tx.session.get(ApiToken, tok.id)
            if fresh is not None:
                fresh.last_used_at = now
    return tok, op
