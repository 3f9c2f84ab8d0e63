"""create_app(settings): wires routes, hub, store and static pages."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, WebSocket
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trustdesk import channels
from trustdesk.actions import attachments, email, escalation, imaging, push, routing
from trustdesk.actions.runtime import Runtime
from trustdesk.actions.settings import LiveSettings
from trustdesk.api import (
    account,
    admin,
    alerts,
    audit,
    console,
    context,
    files,
    help,
    integrations,
    kb,
    labels,
    selftest,
    teams,
    widget,
    ws,
)
from trustdesk.api import (
    channel_settings as channel_settings_api,
)
from trustdesk.api import (
    channels as channel_routes,
)
from trustdesk.api.assets import Compress
from trustdesk.api.errors import BodyLimit, install_error_handlers
from trustdesk.api.pages import csp_for, mount_pages
from trustdesk.channels import live as channel_live
from trustdesk.config import Settings
from trustdesk.realtime.hub import make_hub
from trustdesk.realtime.presence import make_presence
from trustdesk.store.db import Store

log = logging.getLogger(__name__)


async def _expire_presence(rt: Runtime) -> None:
    """Presence of a crashed client or process ends by itself: sweep expired entries."""
    while True:
        await asyncio.sleep(max(1.0, rt.settings.presence_ttl_seconds / 6))
        try:
            for kind, ident in await rt.presence.expire():
                if kind == "operator":
                    await rt.hub.publish(
                        ws.OPERATORS_TOPIC,
                        {
                            "type": "presence",
                            "kind": "operator",
                            "operator": {"id": int(ident), "name": ""},
                            "online": False,
                        },
                    )
                    await rt.hub.publish(
                        ws.VISITORS_PRESENCE_TOPIC,
                        {
                            "type": "presence",
                            "operators_online": len(await rt.presence.online("operator")),
                        },
                    )
                elif kind == "visitor":
                    await rt.hub.publish(
                        ws.OPERATORS_TOPIC,
                        {
                            "type": "presence",
                            "kind": "visitor",
                            "visitor_ref": ident,
                            "ticketId": None,
                            "online": False,
                            "page_url": None,
                            "user_agent": None,
                        },
                    )
        except Exception:  # pragma: no cover - keep sweeping
            log.exception("presence sweep failed")


# Side effects of every committed message (after commit, in the background).
NOTIFIERS: list[Callable[[Runtime, list[dict[str, Any]]], Awaitable[None]]] = [
    # Replies on email / Telegram tickets go back there (channels/); first, so that it
    # queues them in commit order before any other notifier waits on the network.
    channels.notify,
    push.notify_new_messages,
    email.notify_customers,
]


class SecurityHeaders:
    """Headers every HTTP answer carries (a plain ASGI middleware: Starlette's
    BaseHTTPMiddleware costs a task and a stream per request)."""

    def __init__(self, app: ASGIApp, settings: Settings, live: LiveSettings) -> None:
        self.app = app
        self.settings = settings
        self.live = live  # the allowed sites, as saved in the dashboard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                h = MutableHeaders(scope=message)
                if path == "/api/docs":
                    pass  # Swagger UI needs its CDN; the JSON spec itself is same-origin
                elif path.startswith("/api/") or path == "/healthz":
                    h.setdefault(
                        "Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"
                    )
                    h.setdefault("Cache-Control", "no-store")
                else:
                    h.setdefault(
                        "Content-Security-Policy",
                        csp_for(path, self.settings, self.live.current.origins),
                    )
                h.setdefault("X-Content-Type-Options", "nosniff")
                h.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
                if self.settings.cookie_secure:  # served over HTTPS: browsers keep to it
                    h.setdefault("Strict-Transport-Security", "max-age=15552000")
                if not path.startswith("/widget/"):
                    h.setdefault("X-Frame-Options", "DENY")
            await send(message)

        await self.app(scope, receive, send_with_headers)


class TrustDeskApp(FastAPI):
    """FastAPI, except that the two long-lived sockets go straight to their endpoints.

    Through the middleware stack and FastAPI's routing, every open socket keeps a dozen
    awaiting frames and three exit stacks alive for its whole life (about 8 KiB per idle
    widget, measured with tracemalloc), for layers that do nothing for a socket: the
    middlewares here act on HTTP only (security headers, body limits, error pages)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            endpoint = ws.SOCKETS.get(scope["path"])
            if endpoint is not None:
                scope["app"] = self
                await endpoint(WebSocket(scope, receive, send))
                return
        await super().__call__(scope, receive, send)


_frozen = False


def _freeze_startup_objects() -> None:
    """Once per process, when the first app has started: move every object alive now
    (modules, the ORM's mappers, the API's models: about 200,000) out of the cyclic
    garbage collector's reach. They live as long as the process, yet each full collection
    walked them all: 90-200 ms with the loop stopped, every few seconds under load
    (docs/benchmarks.md). Objects that die later are still freed by reference counting.

    And collect young objects after 10,000 allocations instead of 700: a busy server
    allocates that in a few milliseconds, and the full collections (which walk every
    socket's objects: 30-70 ms at 1,000 sockets) come a tenth as often."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()
        gc.set_threshold(10_000, 10, 10)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    live = LiveSettings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        hub = make_hub(settings.redis_url, prefix=settings.redis_prefix)
        presence = make_presence(settings.redis_url, prefix=settings.redis_prefix)
        store = Store(settings, publish=hub.publish_many)
        rt = Runtime(settings=settings, store=store, hub=hub, presence=presence, live_settings=live)
        app.state.runtime = rt

        async def on_messages(messages: list[dict[str, Any]]) -> None:
            """Side effects of committed messages; each one on its own, none can break chat."""
            for notify in NOTIFIERS:
                try:
                    await notify(rt, messages)
                except Exception:  # pragma: no cover
                    log.exception("notifier %s failed", notify.__qualname__)

        store.on_messages = on_messages
        stop_integrations = integrations.start_background(rt)  # webhooks, retention
        await hub.start()
        # The channels' consumers (one process leases each), following the dashboard's settings
        stop_channels = await channel_live.start(rt)
        await live.load(store)
        sweeper = asyncio.create_task(_expire_presence(rt))
        file_sweeper = asyncio.create_task(attachments.sweep_periodically(rt))
        snooze_waker = asyncio.create_task(routing.run_periodic(rt))
        reassigner = asyncio.create_task(routing.run_routing_periodic(rt))
        escalator = asyncio.create_task(escalation.run_periodic(rt))
        settings_follower = asyncio.create_task(live.follow(rt))
        ws.raise_descriptor_limit()  # and warn when it is low
        _freeze_startup_objects()
        try:
            yield
        finally:
            await stop_channels()
            await stop_integrations()
            tasks = (sweeper, file_sweeper, settings_follower, snooze_waker, reassigner, escalator)
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            imaging.POOL.shutdown()  # running image workers are killed
            await hub.stop()
            await store.dispose()

    app = TrustDeskApp(
        title="TrustDesk",
        version="0.1.0",
        description="Live-chat support: visitor API (bearer token), operator API (session "
        "cookie + X-CSRF-Token), WebSockets at /ws/visitor and /ws/operator "
        "(see docs/protocol.md).",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)

    app.add_middleware(Compress)  # page answers: brotli/gzip once per content, ETag, 304
    app.add_middleware(SecurityHeaders, settings=settings, live=live)
    app.add_middleware(
        BodyLimit, max_bytes=settings.max_body_bytes, upload_bytes=settings.max_upload_bytes
    )

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(widget.router)
    app.include_router(files.router)
    app.include_router(widget.inbound_router)
    app.include_router(channel_routes.router)  # Telegram's webhook (channels/telegram.py)
    app.include_router(admin.router)
    app.include_router(context.router)  # customer name, shop orders (api/context.py)
    app.include_router(context.demo_router)  # the demo storefront's order hook
    app.include_router(labels.router)  # labels and merging (api/labels.py)
    app.include_router(teams.router)  # teams and routing rules (api/teams.py)
    app.include_router(audit.router)  # the admins' audit log (api/audit.py)
    app.include_router(kb.admin_router)  # the help center (api/kb.py, api/help.py)
    app.include_router(kb.visitor_router)
    app.include_router(help.router)
    app.include_router(account.router)
    app.include_router(alerts.router)
    app.include_router(console.router)
    app.include_router(channel_settings_api.router)  # Settings → Каналы
    app.include_router(console.public_router)
    app.include_router(selftest.router)  # the installation check (api/selftest.py)
    integrations.install(app)  # API tokens, webhooks, privacy, /metrics
    mount_pages(app)
    return app
