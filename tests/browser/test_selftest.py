"""Settings → Installation check, in a real browser: the server's rows and the browser's own
WebSocket row, directly and through a proxy that passes plain HTTP but not WebSockets."""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import shot
from tests.browser.test_dashboard import login
from tests.support.server import ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, ServerProcess
from tests.support.services import free_port

SERVER_ROWS = ["database", "public_url", "smtp", "push", "redis", "disk", "descriptors", "clock"]
DROPPED = {"upgrade", "connection", "keep-alive", "proxy-connection"}


class NoUpgradeProxy:
    """A reverse proxy like nginx without `proxy_set_header Upgrade/Connection`: it forwards
    each request as plain HTTP/1.1 with `Connection: close`, dropping the hop-by-hop
    headers, so a WebSocket handshake reaches the server as an ordinary GET and fails."""

    def __init__(self, upstream_port: int, port: int) -> None:
        self.upstream_port = upstream_port
        self.port = port
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.upgrades_dropped = 0

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port)
        )
        self.ready.set()
        self.loop.run_forever()
        server.close()
        self.loop.run_until_complete(server.wait_closed())

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            kept = [lines[0]]
            for line in lines[1:]:
                name = line.split(":", 1)[0].strip().lower()
                if not line or name in DROPPED:
                    if name == "upgrade":
                        self.upgrades_dropped += 1
                    continue
                kept.append(line)
            kept += ["Connection: close", "", ""]
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            up_writer.write("\r\n".join(kept).encode("latin-1"))
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except ConnectionError:
            pass
        finally:
            with contextlib.suppress(Exception):
                dst.close()

    def start(self) -> NoUpgradeProxy:
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def behind_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NoUpgradeProxy]:
    """A server whose public URL is the proxy's (so only the WebSocket is wrong)."""
    proxy_port, server_port = free_port(), free_port()
    proxy_url = f"http://127.0.0.1:{proxy_port}"
    srv = ServerProcess(
        tmp_path_factory.mktemp("selftest-proxy"),
        port=server_port,
        extra_env={"TRUSTDESK_PUBLIC_URL": proxy_url, "TRUSTDESK_ALLOWED_ORIGINS": proxy_url},
    )
    srv.create_operator(ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, role="admin")
    srv.start()
    proxy = NoUpgradeProxy(server_port, proxy_port).start()
    yield proxy
    proxy.stop()
    srv.stop()


def run_check(page: Page) -> None:
    page.goto(page.url.split("#")[0] + "#/settings/selftest")
    card = page.locator("#selftest")
    expect(card.get_by_role("heading", name=re.compile("Проверка установки"))).to_be_visible()
    card.get_by_role("button", name="Запустить проверку").click()
    expect(card.get_by_role("button", name="Проверить ещё раз")).to_be_enabled(timeout=15_000)
    for name in ["websocket", *SERVER_ROWS]:
        expect(card.locator(f".selftest-row[data-check='{name}']")).to_be_visible()


def test_admin_runs_the_check_and_every_row_shows(server: ServerProcess, new_page: object) -> None:
    page: Page = new_page()  # type: ignore[operator]
    login(page, server)
    run_check(page)
    card = page.locator("#selftest")
    ws_row = card.locator(".selftest-row[data-check='websocket']")
    expect(ws_row).to_have_class(re.compile(r"\bok\b"))
    expect(ws_row).to_contain_text(f"ws://127.0.0.1:{server.port}/ws/operator")
    for name in ("database", "public_url", "push", "clock"):
        expect(card.locator(f".selftest-row[data-check='{name}']")).to_have_class(
            re.compile(r"\bok\b")
        )
    expect(card.locator(".selftest-row[data-check='smtp']")).to_contain_text("Не настроено")
    expect(card.locator("#selftest-mail")).to_have_count(0)  # no SMTP here: no test mail
    card.scroll_into_view_if_needed()
    shot(page, "selftest", full_page=False)


def test_a_proxy_without_upgrade_headers_is_caught(
    behind_proxy: NoUpgradeProxy, new_page: object
) -> None:
    """Through the proxy the dashboard loads and logs in (plain HTTP passes), the socket
    cannot open; the row says the proxy drops the Upgrade headers and shows nginx's lines."""
    page: Page = new_page()  # type: ignore[operator]
    page.goto(behind_proxy.url + "/admin")
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Пароль").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Войти").click()
    expect(page.get_by_role("heading", name="Тикеты")).to_be_visible()
    run_check(page)
    card = page.locator("#selftest")
    ws_row = card.locator(".selftest-row[data-check='websocket']")
    expect(ws_row).to_have_class(re.compile(r"\bfail\b"))
    expect(ws_row).to_contain_text("прокси не пропускает WebSocket")
    expect(ws_row).to_contain_text("proxy_set_header Upgrade $http_upgrade;")
    expect(ws_row).to_contain_text("docs/deployment.md")
    assert behind_proxy.upgrades_dropped >= 1
    # Only the socket is wrong: the public URL is the proxy's, the database is fine.
    for name in ("database", "public_url"):
        expect(card.locator(f".selftest-row[data-check='{name}']")).to_have_class(
            re.compile(r"\bok\b")
        )
    expect(card.locator(".selftest-summary")).to_contain_text("Есть проблемы")
    ws_row.scroll_into_view_if_needed()
    shot(page, "selftest-proxy", full_page=False)
