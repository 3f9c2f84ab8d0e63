"""The order lookup hook: the shop's own data about a signed-in customer, beside the chat.

For a ticket whose customer the shop identified (external_id), the server POSTs
`{"user_id": ..., "ts": <unix seconds>}` to `TRUSTDESK_CONTEXT_URL`, signed like the
identity (`X-TrustDesk-Signature: sha256=<hex HMAC-SHA256 of the body with
TRUSTDESK_IDENTITY_SECRET>`), and shows the orders it answers. The shop already holds that
secret on its server, so no second one is needed; the two signed texts cannot be confused
(an identity signs "<id>:<expires>", this a JSON object).

The hook is the shop's, so it may be slow or down: the whole call is bounded (2 s), its
answer is bounded and checked, both answers and errors are cached per customer, and any
failure is an `error` string, never an exception, so the ticket view never waits on it (the
dashboard fetches it separately, after the ticket is shown).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from trustdesk.actions.errors import NotFound
from trustdesk.actions.runtime import Runtime
from trustdesk.actions.tickets import ticket_by_number
from trustdesk.store.models import Visitor

if TYPE_CHECKING:
    pass

MAX_ORDERS = 20
MAX_BODY = 256 * 1024  # bytes read from the hook at most
ERROR_CACHE_SECONDS = 10.0  # a failing hook is asked again after this, not on every view
CACHE_SIZE = 1000
_FIELDS = {"number": 64, "status": 64, "total": 32, "currency": 8, "date": 40, "url": 2048}

# (hook URL, shop user id) -> (expires at, answer). Per process: a cache, not the truth.
_cache: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}


def sign(secret: str, body: bytes) -> str:
    """What the shop's endpoint checks: "sha256=" + hex HMAC-SHA256(secret, raw body)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _text(value: object, limit: int) -> str | None:
    if value is None or isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    text = "".join(ch for ch in str(value) if ch.isprintable()).strip()
    return text[:limit] or None


def _order(raw: object) -> dict[str, Any] | None:
    """One order, every field bounded; a url that is not http(s) is dropped (no javascript:)."""
    if not isinstance(raw, dict):
        return None
    out = {k: _text(raw.get(k), n) for k, n in _FIELDS.items()}
    if not out["number"]:
        return None
    url = out["url"]
    if url and (urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc):
        out["url"] = None
    return out


def parse_orders(payload: object) -> list[dict[str, Any]]:
    """The hook's answer: {"orders": [...]} (or a bare list), at most MAX_ORDERS kept."""
    items = payload.get("orders") if isinstance(payload, dict) else payload
    if not isinstance(items, list):
        raise ValueError("the answer has no list of orders")
    orders = (_order(x) for x in items[: MAX_ORDERS * 2])
    return [o for o in orders if o is not None][:MAX_ORDERS]


async def _call(url: str, secret: str, user_id: str, seconds: float) -> list[dict[str, Any]]:
    body = json.dumps({"user_id": user_id, "ts": int(time.time())}).encode()
    headers = {"Content-Type": "application/json", "X-TrustDesk-Signature": sign(secret, body)}
    import httpx

    async with (
        httpx.AsyncClient(timeout=seconds, follow_redirects=False, trust_env=False) as client,
        client.stream("POST", url, content=body, headers=headers) as r,
    ):
        if r.status_code != 200:
            raise ValueError(f"the hook answered HTTP {r.status_code}")
        data = b""
        async for chunk in r.aiter_bytes():
            data += chunk
            if len(data) > MAX_BODY:
                raise ValueError("the hook's answer is too large")
    return parse_orders(json.loads(data))


def _remember(key: tuple[str, str], answer: dict[str, Any], seconds: float) -> None:
    now = time.monotonic()
    if len(_cache) >= CACHE_SIZE:
        for k in [k for k, (until, _) in _cache.items() if until <= now] or list(_cache)[:100]:
            _cache.pop(k, None)
    _cache[key] = (now + seconds, answer)


async def orders_for(rt: Runtime, user_id: str) -> dict[str, Any]:
    """{"orders": [...], "error": None | str} for the shop's user; never raises."""
    url, secret = rt.settings.context_url, rt.settings.identity_secret
    if not url:
        return {"orders": [], "error": None}
    key = (url, user_id)
    hit = _cache.get(key)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    error: str | None = None
    orders: list[dict[str, Any]] = []
    if not secret:
        error = "TRUSTDESK_IDENTITY_SECRET is not set: the hook cannot be signed"
    elif urlsplit(url).scheme not in ("http", "https"):
        error = "TRUSTDESK_CONTEXT_URL is not an http(s) URL"
    else:
        import httpx  # (12 MB: only where an order hook is set)

        timeout = rt.settings.context_timeout_seconds
        try:
            async with asyncio.timeout(timeout):  # the whole call, not each phase
                orders = await _call(url, secret, user_id, timeout)
        except TimeoutError:
            error = "the hook did not answer in time"
        except (
            httpx.HTTPError,
            httpx.InvalidURL,
            ValueError,
        ) as exc:  # JSONDecodeError is a ValueError
            error = str(exc) or type(exc).__name__
    answer = {"orders": orders, "error": error[:200] if error else None}
    seconds = ERROR_CACHE_SECONDS if error else rt.settings.context_cache_seconds
    _remember(key, answer, min(seconds, rt.settings.context_cache_seconds))
    return answer


async def ticket_context(rt: Runtime, number: str) -> dict[str, Any]:
    """The orders of the ticket's customer; nothing (and no call) for an anonymous one."""
    async with rt.store.read() as session:
        t = await ticket_by_number(session, number)
        if t is None:
            raise NotFound("no such ticket", "ticket_not_found")
        v = await session.get(Visitor, t.visitor_id)
        user_id = v.external_id if v is not None else None
    if not user_id:
        return {"orders": [], "error": None}
    return await orders_for(rt, user_id)
