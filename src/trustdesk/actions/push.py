"""Browser push (Web Push, VAPID) for operators whose dashboard is hidden or closed.

The VAPID key pair is generated on first use and kept in the data directory.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import delete, select

from trustdesk.actions.errors import Invalid
from trustdesk.actions.recent import Recent
from trustdesk.actions.runtime import Runtime
from trustdesk.config import Settings
from trustdesk.store.models import Operator, PushSubscription

if TYPE_CHECKING:
    from py_vapid import Vapid02

log = logging.getLogger(__name__)


def _vapid(settings: Settings) -> Vapid02:
    from py_vapid import Vapid02  # with cryptography: 7 MB, loaded by the first push or key

    path = settings.data_dir / "vapid_private.pem"
    if not path.exists():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        v = Vapid02()
        v.generate_keys()
        v.save_key(str(path))
        path.chmod(0o600)
    return Vapid02.from_file(str(path))


def public_key(settings: Settings) -> str:
    """The application server key for PushManager.subscribe (base64url, uncompressed point)."""
    from cryptography.hazmat.primitives import serialization

    raw = _vapid(settings).public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _check_endpoint(settings: Settings, endpoint: str) -> None:
    parts = urlsplit(endpoint)
    local = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme == "https" and parts.hostname and not local:
        return
    if settings.push_allow_local_endpoints and local and parts.scheme in ("http", "https"):
        return
    raise Invalid("push endpoint must be an https URL of a push service", "bad_endpoint")


# Read for every customer message. A subscription added or dropped by another process is
# seen within a second (a push more or less in that second); this process's own at once.
_subscriptions = Recent[list[PushSubscription]](ttl=1.0)


async def _active_subscriptions(rt: Runtime) -> list[PushSubscription]:
    async def load() -> list[PushSubscription]:
        async with rt.store.read() as session:
            return list(
                (
                    await session.scalars(
                        select(PushSubscription)
                        .join(Operator, Operator.id == PushSubscription.operator_id)
                        .where(Operator.active.is_(True))
                    )
                ).all()
            )

    return await _subscriptions.get(rt, load)


def _idents(rows: list[PushSubscription]) -> list[str]:
    return sorted({str(r.operator_id) for r in rows})


async def subscribe(rt: Runtime, op: Operator, endpoint: str, p256dh: str, auth: str) -> None:
    _check_endpoint(rt.settings, endpoint)
    async with rt.store.transaction() as tx:
        row = await tx.session.scalar(
            select(PushSubscription).where(PushSubscription.endpoint == endpoint)
        )
        if row is None:
            tx.session.add(
                PushSubscription(operator_id=op.id, endpoint=endpoint, p256dh=p256dh, auth=auth)
            )
        else:
            row.operator_id, row.p256dh, row.auth = op.id, p256dh, auth
    _subscriptions.forget(rt)


async def unsubscribe(rt: Runtime, op: Operator, endpoint: str) -> None:
    async with rt.store.transaction() as tx:
        await tx.session.execute(
            delete(PushSubscription).where(
                PushSubscription.endpoint == endpoint, PushSubscription.operator_id == op.id
            )
        )
    _subscriptions.forget(rt)


async def notify_new_messages(rt: Runtime, messages: list[dict[str, Any]]) -> None:
    """A customer wrote: push to every operator whose dashboard is not open and visible."""
    customer = [m for m in messages if m["sender_type"] == "customer"]
    if not customer:
        return
    rows = await _active_subscriptions(rt)  # (cached; usually none: ask presence only if any)
    if not rows:
        return
    watching = {
        ident
        for ident, info in (await rt.presence.online_among("operator", _idents(rows))).items()
        if info.get("visible", True)
    }
    targets = [r for r in rows if str(r.operator_id) not in watching]
    if not targets:
        return
    last = customer[-1]
    payload = json.dumps(
        {
            "title": f"{last['sender_name']} · {last['ticket_id']}",
            "body": last["message"][:200],
            "ticketId": last["ticket_id"],
            "url": f"/admin#/ticket/{last['ticket_id']}",
        },
        ensure_ascii=False,
    )
    # (imported on the first push: pywebpush pulls requests and aiohttp, 240 modules and
    # ~19 MB of RSS that an installation without push subscriptions never needs)
    from pywebpush import WebPushException, webpush

    vapid = _vapid(rt.settings)
    claims = {"sub": rt.settings.push_contact}
    dead: list[str] = []

    def send(sub: PushSubscription) -> None:
        try:
            webpush(
                {"endpoint": sub.endpoint, "keys": {"p256dh": sub.p256dh, "auth": sub.auth}},
                data=payload,
                vapid_private_key=vapid,
                vapid_claims=dict(claims),
                timeout=5,
                ttl=3600,
            )
        except WebPushException as exc:
            status = exc.response.status_code if exc.response is not None else None
            if status in (404, 410):
                dead.append(sub.endpoint)
            else:
                log.warning("push to %s failed: %s", urlsplit(sub.endpoint).hostname, exc)
        except Exception as exc:  # network errors must never break the chat
            log.warning("push to %s failed: %s", urlsplit(sub.endpoint).hostname, exc)

    await asyncio.gather(*(asyncio.to_thread(send, t) for t in targets))
    if dead:
        async with rt.store.transaction() as tx:
            await tx.session.execute(
                delete(PushSubscription).where(PushSubscription.endpoint.in_(dead))
            )
        _subscriptions.forget(rt)
