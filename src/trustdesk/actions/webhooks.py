"""Webhooks: the shop's own systems hear of tickets and messages, signed, retried, logged.

Storage is the truth here too. Events are derived from committed message rows: a cursor
row (`webhook_cursor`) says up to which message id deliveries have been queued, and a
scan moves it forward in the same transaction that inserts the deliveries. Message ids
become visible in id order (see store.db), so nothing is skipped, and a crash between a
commit and its wake-up only delays the webhook until the next poll. With several
processes each one scans and delivers; the cursor row lock and guarded UPDATEs make sure
each event is queued once and each attempt is made by one process.

Events, each derived from the message row that marks it:
  ticket.created   the ticket's first message (the bot's greeting)
  ticket.closed    the "ticket closed" system message
  ticket.reopened  the "ticket reopened" system message
  message.created  every message; private notes only for webhooks with include_notes

Every POST carries the JSON body, `X-TrustDesk-Event`, `X-TrustDesk-Delivery` (the
delivery id, the receiver's deduplication key), `X-TrustDesk-Timestamp` (unix seconds,
also in the body as "timestamp") and `X-TrustDesk-Signature: sha256=<hex HMAC-SHA256 of
the body with the webhook's secret>`. A 2xx answer is success; anything else (or no
answer in time) is retried after webhook_backoff_seconds, doubling up to
webhook_backoff_max_seconds, until webhook_max_attempts; then the delivery is "failed".
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from sqlalchemy import CursorResult, delete, func, select, update

from trustdesk.actions import audit, metrics, texts
from trustdesk.actions.errors import Invalid, NotFound
from trustdesk.actions.messages import iso, message_json
from trustdesk.actions.recent import Recent
from trustdesk.actions.runtime import Runtime
from trustdesk.config import Settings

if TYPE_CHECKING:
    import httpx

from trustdesk.store.models import (
    Operator,
    SupportMessage,
    Ticket,
    Webhook,
    WebhookCursor,
    WebhookDelivery,
    utcnow,
)

log = logging.getLogger(__name__)

EVENTS = ("ticket.created", "ticket.closed", "ticket.reopened", "message.created")
STATUSES = ("pending", "ok", "failed")
SCAN_BATCH = 500
DELIVER_BATCH = 50
CONCURRENCY = 4
USER_AGENT = "TrustDesk-Webhook/1"


# ---------------------------------------------------------------- signing


def sign(secret: str, body: bytes) -> str:
    """The X-TrustDesk-Signature value: sha256=<hex HMAC-SHA256 of the body>."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    """What a receiver does (constant-time comparison)."""
    return hmac.compare_digest(sign(secret, body), signature)


# ---------------------------------------------------------------- configuration


def allowed_hosts(settings: Settings) -> frozenset[str]:
    return frozenset(h.strip().lower() for h in settings.webhook_hosts.split(",") if h.strip())


def host_allowed(settings: Settings, url: str) -> bool:
    hosts = allowed_hosts(settings)
    if "*" in hosts:
        return True
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        return False
    return host in hosts or (port is not None and f"{host}:{port}" in hosts)


def clean_url(settings: Settings, url: str) -> str:
    url = (url or "").strip()
    if len(url) > 2048:
        raise Invalid("url is longer than 2048 characters", "invalid_url")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise Invalid("url is not a valid http(s) URL", "invalid_url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
        raise Invalid("url must be an http:// or https:// URL", "invalid_url")
    if not host_allowed(settings, url):
        raise Invalid(
            f"host {parts.hostname} is not allowed: add it to TRUSTDESK_WEBHOOK_HOSTS",
            "webhook_host_not_allowed",
        )
    return url


def clean_events(events: Sequence[str]) -> list[str]:
    if not events or any(e not in EVENTS for e in events):
        raise Invalid(f"events must be a non-empty subset of {', '.join(EVENTS)}", "invalid_events")
    return sorted(set(events), key=EVENTS.index)


def events_of(hook: Webhook) -> list[str]:
    return [e for e in hook.events.split(",") if e]


def webhook_json(hook: Webhook, stats: dict[str, int] | None = None) -> dict[str, Any]:
    return {
        "id": hook.id,
        "url": hook.url,
        "events": events_of(hook),
        "include_notes": hook.include_notes,
        "active": hook.active,
        "description": hook.description,
        "created_at": iso(hook.created_at),
        "deliveries": {s: (stats or {}).get(s, 0) for s in STATUSES},
    }


def delivery_json(d: WebhookDelivery) -> dict[str, Any]:
    try:
        payload = json.loads(d.payload)
    except ValueError:  # pragma: no cover - we wrote it
        payload = None
    return {
        "id": d.id,
        "webhook_id": d.webhook_id,
        "event": d.event,
        "status": d.status,
        "attempts": d.attempts,
        "next_attempt_at": iso(d.next_attempt_at) if d.status == "pending" else None,
        "last_status": d.last_status,
        "last_error": d.last_error,
        "created_at": iso(d.created_at),
        "updated_at": iso(d.updated_at),
        "delivered_at": iso(d.delivered_at) if d.delivered_at else None,
        "payload": payload,
    }


# ---------------------------------------------------------------- management


async def create_webhook(
    rt: Runtime,
    actor: Operator,
    url: str,
    events: Sequence[str],
    include_notes: bool = False,
    description: str | None = None,
) -> Webhook:
    """A new webhook hears of what happens from now on. Its secret is in the returned row."""
    url = clean_url(rt.settings, url)
    wanted = clean_events(events)
    if description is not None:
        description = description.strip()[:200] or None
    async with rt.store.transaction() as tx:
        cursor = await tx.session.scalar(
            select(WebhookCursor).where(WebhookCursor.id == 1).with_for_update()
        )
        top = int(await tx.session.scalar(select(func.max(SupportMessage.id))) or 0)
        others = await tx.session.scalar(select(Webhook.id).where(Webhook.active.is_(True)))
        if cursor is not None and others is None:
            # Nobody was listening: the scan may start from here instead of from the past.
            cursor.last_message_id = max(cursor.last_message_id, top)
        hook = Webhook(
            url=url,
            secret="whsec_" + secrets.token_urlsafe(32),
            events=",".join(wanted),
            include_notes=bool(include_notes),
            active=True,
            description=description,
            since_message_id=top,
            created_by=actor.id,
            created_at=utcnow(),
        )
        tx.session.add(hook)
        audit.record(tx, "webhook.created", audit.safe_url(url), {"events": wanted})
    _any.forget(rt)
    return hook


async def list_webhooks(rt: Runtime) -> list[tuple[Webhook, dict[str, int]]]:
    async with rt.store.read() as session:
        hooks = list((await session.scalars(select(Webhook).order_by(Webhook.id))).all())
        counts = (
            await session.execute(
                select(WebhookDelivery.webhook_id, WebhookDelivery.status, func.count()).group_by(
                    WebhookDelivery.webhook_id, WebhookDelivery.status
                )
            )
        ).all()
    stats: dict[int, dict[str, int]] = {}
    for hook_id, status, n in counts:
        stats.setdefault(int(hook_id), {})[str(status)] = int(n)
    return [(h, stats.get(h.id, {})) for h in hooks]


async def delete_webhook(rt: Runtime, webhook_id: int) -> None:
    """The webhook and its delivery log go; pending deliveries are never attempted."""
    async with rt.store.transaction() as tx:
        hook = await tx.session.get(Webhook, webhook_id)
        if hook is None:
            raise NotFound("no such webhook", "webhook_not_found")
        audit.record(tx, "webhook.deleted", audit.safe_url(hook.url), {"id": hook.id})
        await tx.session.delete(hook)
    _any.forget(rt)


async def list_deliveries(
    rt: Runtime, webhook_id: int, status: str | None = None, limit: int = 50
) -> list[WebhookDelivery]:
    """The delivery log of one webhook, newest first."""
    async with rt.store.read() as session:
        if await session.get(Webhook, webhook_id) is None:
            raise NotFound("no such webhook", "webhook_not_found")
        q = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
        if status:
            q = q.where(WebhookDelivery.status == status)
        q = q.order_by(WebhookDelivery.id.desc()).limit(max(1, min(limit, 500)))
        return list((await session.scalars(q)).all())


async def retry_delivery(rt: Runtime, webhook_id: int, delivery_id: int) -> WebhookDelivery:
    """Send a finished delivery again now (attempts start over)."""
    async with rt.store.transaction() as tx:
        d = await tx.session.get(WebhookDelivery, delivery_id)
        if d is None or d.webhook_id != webhook_id:
            raise NotFound("no such delivery", "delivery_not_found")
        now = utcnow()
        d.status, d.attempts, d.next_attempt_at, d.updated_at = "pending", 0, now, now
    return d


# ---------------------------------------------------------------- queueing (the scan)


def _ticket_json(t: Ticket, status: str) -> dict[str, Any]:
    return {
        "ticketId": t.number,
        "status": status,
        "visitor_id": t.visitor_id,
        "created_at": iso(t.created_at),
        "channel": t.channel,
    }


def _events_for(m: SupportMessage, first_id: int | None) -> list[tuple[str, str | None]]:
    """(event, ticket status it implies) for one message row."""
    out: list[tuple[str, str | None]] = []
    if first_id is not None and m.id == first_id:
        out.append(("ticket.created", "open"))
    if m.sender_type == "system" and m.kind == "text":
        if m.message == texts.TICKET_CLOSED:
            out.append(("ticket.closed", "closed"))
        elif m.message == texts.TICKET_REOPENED:
            out.append(("ticket.reopened", "open"))
    out.append(("message.created", None))
    return out


# The worker asks after every commit. A webhook added by another process is heard of within
# a second; nothing is missed meanwhile: the scan resumes from its cursor.
_any = Recent[bool](ttl=1.0)


async def any_webhooks(rt: Runtime) -> bool:
    async def load() -> bool:
        async with rt.store.read() as session:
            found = await session.scalar(select(Webhook.id).where(Webhook.active.is_(True)))
        return found is not None

    return await _any.get(rt, load)


async def scan(rt: Runtime) -> int:
    """Queue deliveries for messages committed since the cursor. Returns how many rows were
    scanned (SCAN_BATCH means: call again)."""
    async with rt.store.read() as session:
        cursor = await session.scalar(
            select(WebhookCursor.last_message_id).where(WebhookCursor.id == 1)
        )
        top = await session.scalar(select(func.max(SupportMessage.id)))
    if top is None or (cursor is not None and top <= cursor):
        return 0
    async with rt.store.transaction() as tx:
        s = tx.session
        row = await s.scalar(select(WebhookCursor).where(WebhookCursor.id == 1).with_for_update())
        if row is None:  # pragma: no cover - the migration inserts it
            s.add(WebhookCursor(id=1, last_message_id=int(top)))
            return 0
        hooks = list((await s.scalars(select(Webhook).where(Webhook.active.is_(True)))).all())
        if not hooks:
            return 0  # create_webhook moves the cursor when the first one appears
        rows = (
            await s.execute(
                select(SupportMessage, Ticket)
                .join(Ticket, Ticket.id == SupportMessage.ticket_id)
                .where(SupportMessage.id > row.last_message_id)
                .order_by(SupportMessage.id)
                .limit(SCAN_BATCH)
            )
        ).all()
        if not rows:
            return 0
        ticket_ids = {t.id for _, t in rows}
        first_ids = dict(
            (
                await s.execute(
                    select(SupportMessage.ticket_id, func.min(SupportMessage.id))
                    .where(SupportMessage.ticket_id.in_(ticket_ids))
                    .group_by(SupportMessage.ticket_id)
                )
            ).all()
        )
        now = utcnow()
        subscribed = [(h, set(events_of(h))) for h in hooks]
        for m, t in rows:
            message = message_json(m, t.number)
            for event, status in _events_for(m, first_ids.get(t.id)):
                payload = json.dumps(
                    {
                        "event": event,
                        "created_at": iso(m.created_at),
                        "data": {"ticket": _ticket_json(t, status or t.status), "message": message},
                    },
                    ensure_ascii=False,
                    separators=(",", ":"),
                )
                for hook, wanted in subscribed:
                    if event not in wanted or m.id <= hook.since_message_id:
                        continue
                    if m.kind == "note" and not hook.include_notes:
                        continue
                    s.add(
                        WebhookDelivery(
                            webhook_id=hook.id,
                            ticket_id=t.id,
                            message_id=m.id,
                            event=event,
                            payload=payload,
                            status="pending",
                            attempts=0,
                            next_attempt_at=now,
                            created_at=now,
                            updated_at=now,
                        )
                    )
        row.last_message_id = rows[-1][0].id
        return len(rows)


# ---------------------------------------------------------------- delivering


@dataclass
class Claimed:
    id: int
    attempt: int
    event: str
    payload: str
    url: str
    secret: str


def backoff(settings: Settings, attempt: int) -> float:
    """Seconds before the next try after `attempt` failed tries."""
    base = settings.webhook_backoff_seconds * (2 ** min(max(attempt - 1, 0), 30))
    return float(min(base, settings.webhook_backoff_max_seconds))


def _lease(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.webhook_timeout_seconds + 30)


async def _claim(rt: Runtime) -> list[Claimed]:
    """Take due deliveries. A guarded UPDATE per row: whoever changes it first owns it."""
    now = utcnow()
    async with rt.store.read() as session:
        due = (
            await session.execute(
                select(WebhookDelivery.id, WebhookDelivery.attempts)
                .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
                .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
                .limit(DELIVER_BATCH)
            )
        ).all()
    if not due:
        return []
    claimed: list[Claimed] = []
    lease_until = now + _lease(rt.settings)
    async with rt.store.transaction() as tx:
        for delivery_id, attempts in due:
            res = cast(
                CursorResult[Any],
                await tx.session.execute(
                    update(WebhookDelivery)
                    .where(
                        WebhookDelivery.id == delivery_id,
                        WebhookDelivery.status == "pending",
                        WebhookDelivery.attempts == attempts,
                        WebhookDelivery.next_attempt_at <= now,
                    )
                    .values(attempts=attempts + 1, next_attempt_at=lease_until, updated_at=now)
                ),
            )
            if res.rowcount != 1:
                continue
            row = (
                await tx.session.execute(
                    select(
                        WebhookDelivery.event, WebhookDelivery.payload, Webhook.url, Webhook.secret
                    )
                    .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
                    .where(WebhookDelivery.id == delivery_id)
                )
            ).first()
            if row is not None:
                claimed.append(Claimed(delivery_id, attempts + 1, *row))
    return claimed


def _body(c: Claimed, timestamp: int) -> bytes:
    payload = json.loads(c.payload)
    doc = {"id": c.id, "event": c.event, "timestamp": timestamp, **payload}
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


async def _attempt(rt: Runtime, client: httpx.AsyncClient, c: Claimed) -> None:
    import httpx  # (loaded with the client)

    status: int | None = None
    error: str | None = None
    if not host_allowed(rt.settings, c.url):
        error = "host is no longer in TRUSTDESK_WEBHOOK_HOSTS"
        final = True
    else:
        final = False
        ts = int(time.time())
        body = _body(c, ts)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-TrustDesk-Event": c.event,
            "X-TrustDesk-Delivery": str(c.id),
            "X-TrustDesk-Timestamp": str(ts),
            "X-TrustDesk-Signature": sign(c.secret, body),
        }
        try:
            resp = await client.post(c.url, content=body, headers=headers)
            status = resp.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__
    now = utcnow()
    values: dict[str, Any] = {"last_status": status, "last_error": error, "updated_at": now}
    if error is None:
        values.update(status="ok", delivered_at=now)
        result = "ok"
    elif final or c.attempt >= rt.settings.webhook_max_attempts:
        values.update(status="failed")
        result = "failed"
    else:
        values.update(next_attempt_at=now + timedelta(seconds=backoff(rt.settings, c.attempt)))
        result = "retry"
    async with rt.store.transaction() as tx:
        await tx.session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == c.id,
                WebhookDelivery.attempts == c.attempt,
                WebhookDelivery.status == "pending",
            )
            .values(**values)
        )
    metrics.WEBHOOK_DELIVERIES.labels(result).inc()
    if result != "ok":
        log.warning(
            "webhook delivery %s",
            "failed for good" if result == "failed" else "will be retried",
            extra={"delivery_id": c.id, "attempt": c.attempt, "error": error},
        )


async def deliver_due(rt: Runtime, client: httpx.AsyncClient) -> int:
    """Attempt every due delivery once (a few at a time). Returns how many were attempted."""
    claimed = await _claim(rt)
    if not claimed:
        return 0
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(c: Claimed) -> None:
        async with gate:
            try:
                await _attempt(rt, client, c)
            except Exception:  # pragma: no cover - the lease expires and it is retried
                log.exception("webhook delivery crashed", extra={"delivery_id": c.id})

    await asyncio.gather(*(one(c) for c in claimed))
    return len(claimed)


async def next_due(rt: Runtime) -> datetime | None:
    async with rt.store.read() as session:
        return await session.scalar(
            select(func.min(WebhookDelivery.next_attempt_at)).where(
                WebhookDelivery.status == "pending"
            )
        )


async def purge_log(rt: Runtime, now: datetime | None = None) -> int:
    """Finished deliveries older than webhook_log_days go (they hold message text)."""
    days = rt.settings.webhook_log_days
    if days <= 0:
        return 0
    cutoff = (now or utcnow()) - timedelta(days=days)
    async with rt.store.transaction() as tx:
        res = cast(
            CursorResult[Any],
            await tx.session.execute(
                delete(WebhookDelivery).where(
                    WebhookDelivery.status != "pending", WebhookDelivery.updated_at < cutoff
                )
            ),
        )
        return int(res.rowcount or 0)


class WebhookWorker:
    """Runs in every server process: scan, deliver what is due, sleep until woken or due."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run_once(self, client: httpx.AsyncClient) -> datetime | None:
        """One pass; returns when the next pending delivery is due. Without any webhook
        (most shops) it costs one small read."""
        if not await any_webhooks(self.rt):
            return None
        while await scan(self.rt) >= SCAN_BATCH:
            pass
        while await deliver_due(self.rt, client) >= DELIVER_BATCH:
            pass
        return await next_due(self.rt)

    async def _run(self) -> None:
        settings = self.rt.settings
        client: httpx.AsyncClient | None = None  # made (httpx loaded) with the first webhook
        try:
            while True:
                self._wake.clear()
                delay = settings.webhook_poll_seconds
                try:
                    if client is None and await any_webhooks(self.rt):
                        client = _client(settings)
                    due = await self.run_once(client) if client is not None else None
                    if due is not None:
                        delay = min(delay, max(0.0, (due - utcnow()).total_seconds()))
                except Exception:
                    log.exception("webhook worker pass failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
        finally:
            if client is not None:
                await client.aclose()


def _client(settings: Settings) -> httpx.AsyncClient:
    import httpx

    timeout = httpx.Timeout(settings.webhook_timeout_seconds)
    return httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False)
