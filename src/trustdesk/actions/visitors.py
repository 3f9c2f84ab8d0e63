"""Anonymous visitors: a 256-bit random token; only its sha256 is stored."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select

from trustdesk.actions.runtime import Runtime
from trustdesk.store.models import Visitor, utcnow


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


async def create_visitor(
    rt: Runtime, user_agent: str | None = None, page_url: str | None = None
) -> tuple[str, Visitor]:
    token = secrets.token_urlsafe(32)  # 256 bits
    visitor = Visitor(
        id=secrets.token_hex(16),
        token_hash=token_hash(token),
        user_agent=(user_agent or "")[:512] or None,
        page_url=(page_url or "")[:2048] or None,
    )
    async with rt.store.transaction() as tx:
        tx.session.add(visitor)
    return token, visitor


async def visitor_by_token(rt: Runtime, token: str) -> Visitor | None:
    if not token or len(token) > 128:
        return None
    async with rt.store.read() as session:
        return await session.scalar(select(Visitor).where(Visitor.token_hash == token_hash(token)))


async def touch_visitor(
    rt: Runtime, visitor_id: str, user_agent: str | None, page_url: str | None
) -> None:
    async with rt.store.transaction() as tx:
        v = await tx.session.get(Visitor, visitor_id)
        if v is None:
            return
        v.last_seen_at = utcnow()
        if user_agent:
            v.user_agent = user_agent[:512]
        if page_url:
            v.page_url = page_url[:2048]
