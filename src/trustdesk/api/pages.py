"""Static pages: the demo storefront, the widget loader and frame, the dashboard.

Files are served as they are (plain ES modules, no build step), each with a strict
Content-Security-Policy: no inline scripts anywhere.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

from trustdesk.actions.settings import WidgetSettings
from trustdesk.api.assets import HashedFiles
from trustdesk.config import Settings

WEB = Path(__file__).resolve().parent.parent / "web"

_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob: data:; font-src 'self' data:; connect-src {connect}; "
    "object-src 'none'; base-uri 'none'; form-action 'self'"
)


def _connect_src(settings: Settings) -> str:
    """Our own origin and its WebSocket: 'self' (CSP 3 matches ws/wss of the page's own host
    with it), and the public URL's ws/wss spelled out for browsers that do not. No other host
    can be reached, so an injected script could not send anything elsewhere."""
    base = settings.public_url.rstrip("/")
    ws_url = "wss" + base[5:] if base.startswith("https") else "ws" + base[4:]
    return f"'self' {ws_url}"


def csp_for(path: str, settings: Settings, origins: frozenset[str]) -> str:
    """The widget frame may be embedded by the allowed origins (as saved in the dashboard);
    nothing else may be framed."""
    if path.startswith(("/widget/", "/shared/")) and path.endswith((".js", ".css")):
        # A module or stylesheet: the page that loads it is governed by the page's policy
        # (CSP on a subresource applies to nothing it does), so the file gets the shortest
        # strict one. It is sent with each of the widget's ~20 files: ~330 bytes each.
        ancestors = "'self'" if path.startswith("/widget/") else "'none'"
        return f"default-src 'none'; frame-ancestors {ancestors}"
    BASE_CSP = _CSP.format(connect=_connect_src(settings))  # noqa: N806
    if path.startswith("/widget/"):
        ancestors = " ".join(["'self'", *sorted(origins)])
        return f"{BASE_CSP}; frame-ancestors {ancestors}"
    if path == "/" or path.startswith("/demo/"):
        # The storefront frames the widget from its own origin.
        return f"{BASE_CSP}; frame-src 'self'; frame-ancestors 'none'"
    return f"{BASE_CSP}; frame-ancestors 'none'"


class NoCacheStatic(StaticFiles):
    """Static files revalidated on every load, so a deploy is seen at once."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["Cache-Control"] = "no-cache"
        return response


_SETTINGS_MARK = "/*TRUSTDESK_SETTINGS*/ {}"


@functools.lru_cache(maxsize=4)
def loader_js(shop: WidgetSettings) -> bytes:
    """The loader with the shop's look (title, colour, side) written in: the launcher is
    drawn the moment the script runs, with no request of its own. Made once per settings."""
    source = (WEB / "widget" / "loader.js").read_text(encoding="utf-8")
    look = {"title": shop.title, "color": shop.color, "position": shop.position}
    literal = json.dumps(look, ensure_ascii=False).replace("<", "\\u003c")
    return source.replace(_SETTINGS_MARK, literal, 1).encode()


_NO_CACHE = {"Cache-Control": "no-cache"}


def _file(path: Path) -> FileResponse:
    return FileResponse(path, headers=_NO_CACHE)


@functools.lru_cache(maxsize=1)
def _demo_signed_in() -> bytes:
    """The storefront marked for its demo customer (TRUSTDESK_DEMO_CUSTOMER): only then does
    store.js ask /demo/api/customer, so a plain storefront makes no request before the chat
    is opened."""
    page = (WEB / "demo" / "index.html").read_text(encoding="utf-8")
    return page.replace('<html lang="ru">', '<html lang="ru" data-demo-customer>', 1).encode()


def mount_pages(app: FastAPI) -> None:
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    async def storefront(request: Request) -> Response:
        st = request.app.state.runtime.settings
        if not (st.demo_customer and st.identity_secret):
            return _file(WEB / "demo" / "index.html")
        return Response(_demo_signed_in(), media_type="text/html", headers=_NO_CACHE)

    @router.get("/widget.js")
    async def widget_loader(request: Request) -> Response:
        return Response(
            loader_js(request.app.state.runtime.live.current),
            media_type="text/javascript",
            headers={"Cache-Control": "no-cache"},
        )

    shared_files = HashedFiles(WEB / "shared")  # the core both front ends import
    widget_files = HashedFiles(WEB / "widget", shared_files)  # chat.js -> chat.<hash>.js

    @router.get("/shared/{name}")
    async def shared_file(name: str, request: Request) -> Response:
        """web/shared/: hashed names for the widget (immutable), plain ones revalidated."""
        return shared_files.response(name, request.headers.get("if-none-match"))

    @router.get("/widget/{name}")
    async def widget_file(name: str, request: Request) -> Response:
        """The frame page (revalidated) and the chat's modules under hashed, immutable URLs."""
        return widget_files.response(name, request.headers.get("if-none-match"))

    @router.get("/admin")
    @router.get("/admin/")
    async def dashboard() -> FileResponse:
        return _file(WEB / "admin" / "index.html")

    @router.get("/admin.html")
    async def legacy_admin(request: Request) -> RedirectResponse:
        return RedirectResponse("/admin", status_code=301)

    app.include_router(router)
    for name in ("admin", "demo", "i18n"):
        app.mount(f"/{name}", NoCacheStatic(directory=WEB / name, check_dir=False), name=name)
