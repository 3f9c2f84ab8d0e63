"""A customer's name (name, else email, else "Гость #N"; set by an operator) and the shop's
orders beside the chat (the order lookup hook, TRUSTDESK_CONTEXT_URL), on SQLite and
PostgreSQL, against the real server and the demo storefront's real hook endpoint."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.support.clients import OperatorClient, VisitorClient
from tests.support.server import ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, ServerProcess
from tests.support.services import Postgres, free_port
from tests.support.wsclient import operator_socket
from trustdesk.actions.customers import guest_number, identity_signature

SHOP_SECRET = "shop-secret-for-context-tests"
DEMO_USER = "demo-maria"
_n = itertools.count()


def _start(tmp: Any, url: str | None, port: int, hook: str | None) -> ServerProcess:
    env = {"TRUSTDESK_IDENTITY_SECRET": SHOP_SECRET}
    if hook:
        env["TRUSTDESK_CONTEXT_URL"] = hook
    srv = ServerProcess(tmp, database_url=url, port=port, extra_env=env)
    srv.create_operator(ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, role="admin")
    return srv.start()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """The hook points at the demo storefront's endpoint on the server itself."""
    url = None
    if request.param == "postgres":
        pg: Postgres = request.getfixturevalue("postgres")
        url = pg.create_database(f"context_{next(_n)}")
    port = free_port()
    hook = f"http://127.0.0.1:{port}/demo/api/orders"
    srv = _start(tmp_path_factory.mktemp(f"context-{request.param}"), url, port, hook)
    yield srv
    srv.stop()


class Hook:
    """A shop's hook we control: counts calls, checks signatures, and misbehaves on cue
    by user id ("slow-*" sleeps 5 s, "redirect-*" answers 302, "junk-*" answers non-JSON,
    "huge-*" answers 1 MiB, anything else 30 orders with hostile fields)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []  # (user id, signature valid)
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                mac = hmac.new(SHOP_SECRET.encode(), body, hashlib.sha256).hexdigest()
                ok = self.headers.get("X-TrustDesk-Signature") == f"sha256={mac}"
                user = json.loads(body)["user_id"]
                hook.calls.append((user, ok))
                if user.startswith("slow-"):
                    time.sleep(5)
                if user.startswith("redirect-"):
                    self.send_response(302)
                    self.send_header("Location", "http://127.0.0.1:1/")
                    self.end_headers()
                    return
                if user.startswith("junk-"):
                    out = b"<html>oops</html>"
                elif user.startswith("huge-"):
                    out = b'{"orders": [' + b'{"number": "1"},' * 70000 + b'{"number": "1"}]}'
                else:
                    orders = [
                        {
                            "number": f"N{i}",
                            "status": "ok",
                            "total": 100 + i,
                            "currency": "RUB",
                            "date": "2026-12-01",
                            "url": f"https://shop.example/o/{i}",
                        }
                        for i in range(30)
                    ]
                    orders[0].update(number="X" * 500, url="javascript:alert(1)")
                    orders[1].update(status={"nested": True}, url="https://ok.example/1")
                    out = json.dumps({"orders": orders}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.server.shutdown()


@pytest.fixture(scope="module")
def hooked(tmp_path_factory: pytest.TempPathFactory, hook: Hook) -> Iterator[ServerProcess]:
    srv = _start(tmp_path_factory.mktemp("context-hooked"), None, free_port(), hook.url)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = _start(tmp_path_factory.mktemp("context-bare"), None, free_port(), None)
    yield srv
    srv.stop()


def _identify(v: VisitorClient, user_id: str, **extra: str) -> None:
    expires = int(time.time()) + 3600
    r = v.http.post(
        "/api/support/identify",
        json={
            "user_id": user_id,
            "expires": expires,
            "hash": identity_signature(SHOP_SECRET, user_id, expires),
            **extra,
        },
    )
    assert r.status_code == 200, r.text


def _summary(op: OperatorClient, number: str) -> dict[str, Any]:
    return op.open(number)["ticket"]


def _customer_ticket(srv: ServerProcess, user_id: str | None = None) -> tuple[VisitorClient, str]:
    v = VisitorClient(srv.url)
    if user_id:
        _identify(v, user_id)
    return v, v.send("Где мой заказ?")["ticketId"]


def test_display_name_is_name_else_email_else_numbered_guest(server: ServerProcess) -> None:
    op = OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    v, number = _customer_ticket(server)
    guest = f"Гость #{guest_number(v.visitor_id)}"
    s = _summary(op, number)
    assert s["customer_name"] == guest and s["customer_own_name"] is None
    assert [t["customer_name"] for t in op.tickets() if t["ticketId"] == number] == [guest]
    # The message's author (what push notifications and emails show) is the same name.
    customer_msgs = [m for m in op.open(number)["messages"] if m["sender_type"] == "customer"]
    assert customer_msgs[0]["sender_name"] == guest
    # The same visitor's second ticket: the same number.
    second = v.send("Ещё вопрос", new_ticket=True)["ticketId"]
    assert second != number and _summary(op, second)["customer_name"] == guest
    # An email left in the widget: shown instead of the guest number.
    r = v.http.post("/api/support/contact", json={"email": "olga@example.com"})
    assert r.status_code == 200, r.text
    assert _summary(op, number)["customer_name"] == "olga@example.com"
    # A signed-in customer without a name: numbered by the shop's id, alike on every device.
    uid = f"user-{next(_n)}-{time.time_ns()}"
    a, na = _customer_ticket(server, uid)
    b, nb = _customer_ticket(server, uid)
    assert na == nb  # (the second device continues the customer's open ticket)
    expected = f"Гость #{guest_number(b.visitor_id, uid)}"
    assert _summary(op, na)["customer_name"] == _summary(op, nb)["customer_name"] == expected
    # With the shop's name: the name.
    _identify(b, uid, name="Иван Петров")
    assert _summary(op, nb)["customer_name"] == "Иван Петров"


def test_operator_renames_the_customer_and_every_dashboard_hears(server: ServerProcess) -> None:
    op = OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    uid = f"user-{next(_n)}-{time.time_ns()}"
    laptop, number = _customer_ticket(server, uid)
    phone, other = _customer_ticket(server, uid)  # the same customer on another device
    path = f"/api/admin/support/ticket/{number}/customer"

    async def rename_and_listen() -> tuple[httpx.Response, set[str]]:
        cookie = op.http.cookies["td_session"]
        sock, _ = await operator_socket(server.ws_url, cookie, server.url)
        try:
            r = await asyncio.to_thread(op.http.patch, path, json={"name": "  Ольга Смирнова  "})
            seen: set[str] = set()
            while seen != {number, other}:
                f = await sock.until(
                    lambda f: (
                        f["type"] == "ticket" and f["ticket"]["customer_name"] == "Ольга Смирнова"
                    )
                )
                seen.add(f["ticket"]["ticketId"])
            return r, seen
        finally:
            await sock.close()

    r, seen = asyncio.run(rename_and_listen())
    assert r.status_code == 200, r.text
    assert r.json()["ticket"]["customer_name"] == "Ольга Смирнова"
    assert r.json()["ticket"]["customer_own_name"] == "Ольга Смирнова"
    assert _summary(op, other)["customer_name"] == "Ольга Смирнова"  # both devices' tickets
    # Her next message carries the name.
    laptop.send("Спасибо")
    assert op.open(number)["messages"][-1]["sender_name"] == "Ольга Смирнова"
    # Bounds: 100 characters after trimming; NUL refused; empty clears.
    too_long = op.http.patch(path, json={"name": "я" * 101})
    assert too_long.status_code == 422 and too_long.json()["error"]["code"] == "name_too_long"
    assert op.http.patch(path, json={"name": "  " + "я" * 100 + "  "}).status_code == 200
    assert op.http.patch(path, json={"name": "a\x00b"}).status_code == 422
    assert op.http.patch(path, json={"name": "x" * 5000}).status_code == 422
    assert op.http.patch(path, json={}).status_code == 422
    cleared = op.http.patch(path, json={"name": "   "})
    assert cleared.status_code == 200
    assert cleared.json()["ticket"]["customer_own_name"] is None
    assert cleared.json()["ticket"]["customer_name"].startswith("Гость #")
    # Unknown ticket 404; without the CSRF header 403; without a session 401.
    assert (
        op.http.patch(
            "/api/admin/support/ticket/TKT-0-NONE/customer", json={"name": "x"}
        ).status_code
        == 404
    )
    no_csrf = httpx.patch(
        server.url + path, json={"name": "x"}, cookies={"td_session": op.http.cookies["td_session"]}
    )
    assert no_csrf.status_code == 403
    assert httpx.patch(server.url + path, json={"name": "x"}).status_code == 401
    assert phone.ticket_id == other


def test_orders_from_the_demo_storefront_hook(server: ServerProcess) -> None:
    op = OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    _, demo = _customer_ticket(server, DEMO_USER)
    r = op.http.get(f"/api/admin/support/ticket/{demo}/context")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["error"] is None
    assert [o["number"] for o in body["orders"]] == ["TS-10482", "TS-10317", "TS-10055"]
    first = body["orders"][0]
    assert first["status"] == "В пути" and first["total"] == "12990.00"
    assert first["currency"] == "RUB" and first["url"].startswith(server.url + "/")
    # Another signed-in customer: the shop has no orders for them; an anonymous one: no call.
    _, other = _customer_ticket(server, f"user-{next(_n)}")
    assert op.http.get(f"/api/admin/support/ticket/{other}/context").json() == {
        "orders": [],
        "error": None,
    }
    _, anon = _customer_ticket(server)
    assert op.http.get(f"/api/admin/support/ticket/{anon}/context").json() == {
        "orders": [],
        "error": None,
    }
    assert op.http.get("/api/admin/support/ticket/TKT-0-NONE/context").status_code == 404
    assert httpx.get(f"{server.url}/api/admin/support/ticket/{demo}/context").status_code == 401
    # The demo endpoint checks the signature and its freshness, as a shop's should.
    orders = server.url + "/demo/api/orders"
    body_ok = json.dumps({"user_id": DEMO_USER, "ts": int(time.time())}).encode()
    assert httpx.post(orders, content=body_ok).status_code == 401
    forged = "sha256=" + hmac.new(b"guess", body_ok, hashlib.sha256).hexdigest()
    assert (
        httpx.post(orders, content=body_ok, headers={"X-TrustDesk-Signature": forged}).status_code
        == 401
    )
    stale = json.dumps({"user_id": DEMO_USER, "ts": int(time.time()) - 3600}).encode()
    sig = "sha256=" + hmac.new(SHOP_SECRET.encode(), stale, hashlib.sha256).hexdigest()
    assert (
        httpx.post(orders, content=stale, headers={"X-TrustDesk-Signature": sig}).status_code == 401
    )
    # The demo customer is off unless TRUSTDESK_DEMO_CUSTOMER=true.
    assert httpx.get(server.url + "/demo/api/customer").status_code == 404


def test_hook_is_signed_bounded_and_cached(hooked: ServerProcess, hook: Hook) -> None:
    op = OperatorClient(hooked.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    uid = f"shop-{next(_n)}"
    _, number = _customer_ticket(hooked, uid)
    path = f"/api/admin/support/ticket/{number}/context"
    body = op.http.get(path).json()
    assert body["error"] is None and hook.calls[-1] == (uid, True)  # signed
    orders = body["orders"]
    assert len(orders) == 20  # of 30
    assert orders[0]["number"] == "X" * 64 and orders[0]["url"] is None  # no javascript:
    assert orders[1]["status"] is None and orders[1]["url"] == "https://ok.example/1"
    assert orders[2]["total"] == "102"
    # Cached per customer: the second view does not call the shop again.
    calls = len(hook.calls)
    assert op.http.get(path).json() == body
    assert len(hook.calls) == calls
    # A redirect is not followed; junk and a huge answer are errors, not 500s.
    for kind in ("redirect", "junk", "huge"):
        _, n = _customer_ticket(hooked, f"{kind}-{next(_n)}")
        r = op.http.get(f"/api/admin/support/ticket/{n}/context")
        assert r.status_code == 200, r.text
        assert r.json()["orders"] == [] and r.json()["error"], (kind, r.json())


def test_slow_hook_never_blocks_the_ticket_view(hooked: ServerProcess, hook: Hook) -> None:
    """The hook sleeps 5 s: the context answers within ~2 s with an error, and the ticket
    opens at once meanwhile."""
    op = OperatorClient(hooked.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    viewer = OperatorClient(hooked.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    _, number = _customer_ticket(hooked, f"slow-{next(_n)}")
    path = f"/api/admin/support/ticket/{number}/context"
    with ThreadPoolExecutor(1) as pool:
        t0 = time.monotonic()
        pending = pool.submit(op.http.get, path)
        while not any(u.startswith("slow-") for u, _ in hook.calls[-3:]):
            assert time.monotonic() - t0 < 5, "the hook was never called"
            time.sleep(0.01)
        t1 = time.monotonic()
        viewer.open(number)  # while the hook is hanging
        view_seconds = time.monotonic() - t1
        r = pending.result(timeout=10)
        context_seconds = time.monotonic() - t0
    assert r.status_code == 200 and r.json()["orders"] == []
    assert "in time" in r.json()["error"]
    assert context_seconds < 2.6, context_seconds
    assert view_seconds < 0.5, view_seconds
    # The error is cached briefly: the next view answers at once.
    t2 = time.monotonic()
    assert op.http.get(path).json()["error"]
    assert time.monotonic() - t2 < 0.5


def test_no_hook_configured(bare: ServerProcess) -> None:
    op = OperatorClient(bare.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    _, number = _customer_ticket(bare, DEMO_USER)
    r = op.http.get(f"/api/admin/support/ticket/{number}/context")
    assert r.status_code == 200 and r.json() == {"orders": [], "error": None}
