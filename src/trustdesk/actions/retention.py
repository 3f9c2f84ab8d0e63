"""Privacy by default: what is no longer needed is deleted.

With TRUSTDESK_RETENTION_DAYS=N (0, the default, keeps everything), closed tickets with
no activity for N days are deleted with their messages, read cursors and webhook
deliveries, and so are visitors with no ticket left who have not been seen for N days.
Finished webhook deliveries are deleted after TRUSTDESK_WEBHOOK_LOG_DAYS. Every server
process runs `run_periodic` (deleting twice is harmless); `trustdesk purge` runs it once.

Whatever else belongs to a ticket (files, later) registers a hook with
`on_tickets_deleted`: it runs in the deleting transaction, before the rows go, and can
queue the removal of files with `tx.after_commit(...)`, so files go only if the rows did.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select

from trustdesk.actions import audit, metrics, webhooks
from trustdesk.actions.runtime import Runtime
from trustdesk.config import Settings
from trustdesk.store.db import Tx
from trustdesk.store.models import SupportMessage, Ticket, Visitor, utcnow

log = logging.getLogger(__name__)

TicketsDeletedHook = Callable[[Tx, list[str]], Awaitable[None]]
_hooks: list[TicketsDeletedHook] = []
BATCH = 200


def on_tickets_deleted(hook: TicketsDeletedHook) -> TicketsDeletedHook:
    """Register hook(tx, ticket_ids): called before tickets are deleted for good."""
    if hook not in _hooks:
        _hooks.append(hook)
    return hook


async def delete_tickets(tx: Tx, ticket_ids: list[str]) -> int:
    """Delete tickets (and, by cascade, everything hanging off them) in the caller's
    transaction. Returns how many messages went with them."""
    if not ticket_ids:
        return 0
    for hook in list(_hooks):
        await hook(tx, ticket_ids)
    n = await tx.session.scalar(
        select(func.count(SupportMessage.id)).where(SupportMessage.ticket_id.in_(ticket_ids))
    )
    await tx.session.execute(delete(Ticket).where(Ticket.id.in_(ticket_ids)))
    return int(n or 0)


@dataclass
class PurgeResult:
    tickets: int = 0
    messages: int = 0
    visitors: int = 0
    deliveries: int = 0
    audit: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


async def purge(rt: Runtime, days: int | None = None, now: datetime | None = None) -> PurgeResult:
    """Apply the retention policy once (days: override the setting; 0 = tickets are kept)."""
    days = rt.settings.retention_days if days is None else days
    now = now or utcnow()
    out = PurgeResult()
    if days > 0:
        cutoff = now - timedelta(days=days)
        while True:
            async with rt.store.transaction() as tx:
                ids = list(
                    (
                        await tx.session.scalars(
                            select(Ticket.id)
                            .where(Ticket.status == "closed", Ticket.updated_at < cutoff)
                            .order_by(Ticket.updated_at)
                            .limit(BATCH)
                            .with_for_update(skip_locked=True)
                        )
                    ).all()
                )
                out.messages += await delete_tickets(tx, ids)
                out.tickets += len(ids)
            if len(ids) < BATCH:
                break
        while True:
            async with rt.store.transaction() as tx:
                has_ticket = select(Ticket.id).where(Ticket.visitor_id == Visitor.id).exists()
                vids = list(
                    (
                        await tx.session.scalars(
                            select(Visitor.id)
                            .where(Visitor.last_seen_at < cutoff, ~has_ticket)
                            .limit(BATCH)
                        )
                    ).all()
                )
                if vids:
                    res = cast(
                        CursorResult[Any],
                        await tx.session.execute(
                            delete(Visitor).where(
                                Visitor.id.in_(vids),
                                Visitor.last_seen_at < cutoff,
                                ~select(Ticket.id).where(Ticket.visitor_id == Visitor.id).exists(),
                            )
                        ),
                    )
                    out.visitors += int(res.rowcount or 0)
            if len(vids) < BATCH:
                break
    out.deliveries = await webhooks.purge_log(rt, now)
    out.audit = await audit.purge(rt, now)
    metrics.PURGED_TICKETS.inc(out.tickets)
    if out.tickets or out.visitors or out.deliveries or out.audit:
        log.info("retention purge", extra={"purged": out.as_dict(), "retention_days": days})
    return out


async def run_periodic(rt: Runtime) -> None:
    """Every retention_interval_seconds, from shortly after start, until cancelled."""
    while True:
        try:
            await purge(rt)
        except Exception:
            log.exception("retention purge failed")
        await asyncio.sleep(rt.settings.retention_interval_seconds)


async def purge_once(settings: Settings, days: int | None = None) -> dict[str, int]:
    """`trustdesk purge`: one pass of the policy, outside the server."""
    from trustdesk.realtime.hub import make_hub
    from trustdesk.realtime.presence import make_presence
    from trustdesk.store.db import Store

    rt = Runtime(
        settings=settings, store=Store(settings), hub=make_hub(None), presence=make_presence(None)
    )
    try:
        return (await purge(rt, days)).as_dict()
    finally:
        await rt.store.dispose()
