"""Real headless Chromium (Debian's `chromium`) driven by Playwright, against a real server."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from tests.support.server import ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, ServerProcess

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("browser-server"))
    srv.create_operator(ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, role="admin")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    b = playwright_instance.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    yield b
    b.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed browser test reports what the pages logged and the server's last lines, so a
    failure seen once (in CI, say) can be explained without reproducing it."""
    outcome = yield
    rep = outcome.get_result()  # type: ignore[attr-defined]
    if rep.when != "call" or not rep.failed:
        return
    console = getattr(item, "browser_console", None)
    if console:
        rep.sections.append(("browser console", "\n".join(console[-80:])))
    srv = getattr(item, "funcargs", {}).get("server")
    if isinstance(srv, ServerProcess) and srv.log_path.exists():
        lines = srv.log_path.read_text(errors="replace").splitlines()[-60:]
        rep.sections.append(("server log (last 60 lines)", "\n".join(x[:600] for x in lines)))


@pytest.fixture
def new_page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[object]:
    """Factory: new_page(locale="ru-RU", viewport=None) -> Page in a fresh browser context."""
    contexts = []
    console: list[str] = []
    request.node.browser_console = console

    def make(locale: str = "ru-RU", viewport: dict[str, int] | None = None, **kw: object) -> Page:
        ctx = browser.new_context(
            locale=locale, viewport=viewport or {"width": 1280, "height": 800}, **kw
        )
        contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(10_000)
        n = len(contexts)
        page.on("console", lambda m: console.append(f"[page {n}] {m.type}: {m.text}"))
        page.on("pageerror", lambda e: console.append(f"[page {n}] error: {e}"))
        return page

    yield make
    for ctx in contexts:
        ctx.close()


def shot(page: Page, name: str, **kw: object) -> Path:
    """Save a screenshot to docs/screenshots/<name>.png (shown in the README)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), **kw)
    return path
