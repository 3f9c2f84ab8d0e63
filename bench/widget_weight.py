"""What a shop's visitor downloads for the chat: `python -m bench.widget_weight`.

Starts `trustdesk run` (tests/support/server.py), opens the demo storefront in headless
Chromium, opens the chat, and counts every response the widget caused (the loader, the frame,
its modules and stylesheet, its API calls; not the storefront's own files) with the bytes
that crossed the wire as Chromium reports them (body as encoded + headers). Then the same
visitor opens the chat again on another page (a second visit, browser cache warm). Prints the
table that docs/benchmarks.md quotes. tests/browser/test_widget_weight.py holds the budget.
"""

from __future__ import annotations

import argparse
import gzip
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, BrowserContext, expect, sync_playwright

from tests.support.server import ServerProcess

LAUNCHER = {"ru": "Открыть чат", "en": "Open chat"}
FRAME = {"ru": "iframe[title='Чат поддержки']", "en": "iframe[title='Support chat']"}


@dataclass(frozen=True)
class Fetch:
    path: str
    status: int
    body: int  # bytes of the body on the wire (compressed when it was)
    headers: int
    encoding: str

    @property
    def wire(self) -> int:
        return self.body + self.headers


def is_widget(path: str) -> bool:
    """The storefront's page, styles and pictures are the shop's, not the widget's."""
    return not (path == "/" or path.startswith("/demo/"))


def open_chat(context: BrowserContext, base_url: str, locale: str = "ru") -> list[Fetch]:
    """One visit: the storefront, then a click on the launcher until the chat can be typed in
    and the network is quiet. Returns what the widget fetched, with the bytes Chromium's
    network layer received for each (DevTools protocol: 0 for an answer from the cache)."""
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    seen: dict[str, dict[str, Any]] = {}

    def on_response(event: dict[str, Any]) -> None:
        r = event["response"]
        headers = {k.lower(): v for k, v in r.get("headers", {}).items()}
        seen[event["requestId"]] = {
            "url": r["url"],
            "status": r["status"],
            "encoding": headers.get("content-encoding", ""),
            "headers": int(r.get("encodedDataLength", 0)),
            "cached": bool(r.get("fromDiskCache") or r.get("fromPrefetchCache")),
        }

    def on_finished(event: dict[str, Any]) -> None:
        if event["requestId"] in seen:
            seen[event["requestId"]]["total"] = int(event.get("encodedDataLength", 0))

    cdp.on("Network.responseReceived", on_response)
    cdp.on("Network.loadingFinished", on_finished)
    cdp.on("Network.requestServedFromCache", lambda e: seen.setdefault(e["requestId"], {}))
    cdp.send("Network.enable")
    page.goto(base_url + "/")
    page.get_by_role("button", name=LAUNCHER[locale]).click()
    expect(page.frame_locator(FRAME[locale]).locator("#input")).to_be_visible(timeout=15_000)
    page.wait_for_load_state("networkidle")
    fetched = []
    for r in seen.values():
        if "url" not in r or not r["url"].startswith(base_url):
            continue
        path = r["url"].removeprefix(base_url).split("#")[0].split("?")[0]
        if not is_widget(path):
            continue
        total = 0 if r["cached"] else r.get("total", 0)
        head = min(r["headers"], total)
        fetched.append(Fetch(path, r["status"], total - head, head, r["encoding"]))
    page.close()
    return fetched


def first_and_second_open(browser: Browser, base_url: str) -> tuple[list[Fetch], list[Fetch]]:
    context = browser.new_context(locale="ru-RU")
    try:
        return open_chat(context, base_url), open_chat(context, base_url)
    finally:
        context.close()


def loader_sizes(base_url: str) -> dict[str, int]:
    """The loader as served for each Accept-Encoding (Content-Length on the wire)."""
    out = {}
    with httpx.Client(base_url=base_url, timeout=10) as http:
        for coding in ("identity", "gzip", "br"):
            r = http.get("/widget.js", headers={"Accept-Encoding": coding})
            r.raise_for_status()
            out[coding] = int(r.headers["content-length"])
    return out


def per_request_cost(body: bytes, n: int = 200) -> dict[str, float]:
    """Milliseconds of CPU per answer: gzip on every request (what a plain gzip middleware
    does) against the cached compressed body (what assets.Compress does after the first)."""
    from trustdesk.api.assets import body_etag, compressed

    compressed(body, "br")
    t = time.process_time()
    for _ in range(n):
        gzip.compress(body, compresslevel=6)
    per_request_gzip = (time.process_time() - t) / n * 1000
    t = time.process_time()
    for _ in range(n):
        copy = bytes(bytearray(body))  # a new bytes object, as a file read gives
        compressed(copy, "br")
        body_etag(copy)
    cached = (time.process_time() - t) / n * 1000
    return {"gzip per request": per_request_gzip, "cached": cached}


def table(first: list[Fetch], second: list[Fetch], loader: dict[str, int]) -> str:
    kb = 1024
    rows = [
        "| What | Bytes |",
        "| --- | ---: |",
        f"| Loader `/widget.js`, uncompressed | {loader['identity'] / kb:.1f} KB |",
        f"| Loader, gzip | {loader['gzip'] / kb:.1f} KB |",
        f"| Loader, brotli | {loader['br'] / kb:.1f} KB |",
        f"| First open, bodies ({len(first)} responses) | "
        f"{sum(f.body for f in first) / kb:.1f} KB |",
        f"| First open, bodies + headers | {sum(f.wire for f in first) / kb:.1f} KB |",
        f"| Second open (cache warm), bodies ({len(second)} responses) | "
        f"{sum(f.body for f in second) / kb:.1f} KB |",
        f"| Second open, bodies + headers | {sum(f.wire for f in second) / kb:.1f} KB |",
    ]
    detail = [
        "",
        "| Response | Status | Encoding | First open: body | headers | Second: body | headers |",
    ]
    detail.append("| --- | ---: | --- | ---: | ---: | ---: | ---: |")
    again = {f.path: f for f in second}
    for f in first:
        s = again.get(f.path)
        later = f"{s.body} | {s.headers}" if s else "- | -"
        detail.append(
            f"| `{f.path}` | {f.status} | {f.encoding or '-'} | {f.body} | {f.headers} | {later} |"
        )
    return "\n".join(rows + detail)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS

    srv = ServerProcess(Path(tempfile.mkdtemp(prefix="widget-weight-")))
    srv.start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            first, second = first_and_second_open(browser, srv.url)
            browser.close()
        loader = loader_sizes(srv.url)
        chat_js = httpx.get(srv.url + "/widget/chat.js", headers={"Accept-Encoding": "identity"})
    finally:
        srv.stop()
    print(table(first, second, loader))
    cost = per_request_cost(chat_js.content)
    print(
        f"\nCPU per answer of chat.js ({len(chat_js.content)} B): gzip on every request "
        f"{cost['gzip per request']:.3f} ms, cached compressed body {cost['cached']:.3f} ms"
    )


if __name__ == "__main__":
    main()
