"""The operator side: every admin endpoint and the operator socket refuse anyone who is not
a logged-in, active operator with a live session, and every state change needs CSRF.

The endpoint list comes from /api/openapi.json, so an endpoint added later is attacked
too without touching this file. Each refusal is checked for its exact status, and the
stored state is compared before and after: nothing a refused call asked for happened.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.security.conftest import AGENT_EMAIL, AGENT_PASSWORD, start_server
from tests.support.clients import OperatorClient, VisitorClient
from tests.support.inspect_db import query
from tests.support.payloads import png
from tests.support.server import ADMIN_EMAIL, ADMIN_PASSWORD, ServerProcess
from tests.support.wsclient import operator_socket
from trustdesk.api.account import PUBLIC_PATHS

SAFE = {"GET", "HEAD", "OPTIONS"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path_factory, "operator-auth")
    yield srv
    srv.stop()


def sid_hash(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


def login(server: ServerProcess, email: str = ADMIN_EMAIL, pw: str = ADMIN_PASSWORD) -> Any:
    return OperatorClient(server.url, email, pw)


class World:
    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.admin = login(server)
        self.visitor = VisitorClient(server.url)
        self.ticket = self.visitor.send("Здравствуйте")["ticketId"]
        r = self.visitor.http.post(
            "/api/support/upload",
            params={"ticketId": self.ticket, "name": "a.png"},
            content=png(),
            headers={"Content-Type": "application/octet-stream"},
        )
        assert r.status_code == 200, r.text
        self.file_id = r.json()["message"]["attachment"]["id"]
        self.visitor_id = query(
            server, "SELECT visitor_id FROM tickets WHERE number = $1", self.ticket
        )[0][0]
        self.agent_id = next(
            o["id"]
            for o in self.admin.http.get("/api/admin/operators").json()["operators"]
            if o["email"] == AGENT_EMAIL
        )
        r = self.admin.post("/api/admin/canned", json={"name": "hello", "text": "Здравствуйте!"})
        assert r.status_code == 201, r.text
        self.canned_id = r.json()["canned"]["id"]

    def operations(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(method, url, request kwargs) of every operator endpoint, ready to send."""
        spec = httpx.get(self.server.url + "/api/openapi.json").json()
        out = []
        for path, ops in spec["paths"].items():
            # The login screen's own steps need no session (api/account.py PUBLIC_PATHS).
            if not path.startswith("/api/admin/") or path in {"/api/admin/login", *PUBLIC_PATHS}:
                continue
            for method, op in ops.items():
                url = (
                    path.replace("{ticketId}", self.ticket)
                    .replace("{operator_id}", str(self.agent_id))
                    .replace("{visitor_id}", self.visitor_id)
                    .replace("{file_id}", self.file_id)
                    .replace("{canned_id}", str(self.canned_id))
                    .replace("{section}", "smtp")
                )
                for name in (
                    "token_id",
                    "webhook_id",
                    "delivery_id",
                    "label_id",
                    "article_id",
                    "team_id",
                    "rule_id",
                ):
                    url = url.replace("{" + name + "}", "1")
                assert "{" not in url, f"fill the path parameter of {path}"
                kw: dict[str, Any] = {}
                params = {
                    p["name"]: self.ticket
                    for p in op.get("parameters", [])
                    if p["in"] == "query" and p.get("required") and p["name"] == "ticketId"
                }
                if params:
                    kw["params"] = params
                content = op.get("requestBody", {}).get("content", {})
                if "application/octet-stream" in content:
                    kw["content"] = png()
                    kw["headers"] = {"Content-Type": "application/octet-stream"}
                elif "application/json" in content:
                    kw["json"] = {}
                out.append((method.upper(), url, kw))
        assert len(out) >= 30, "the operator API lost endpoints?"
        return out

    def state(self) -> dict[str, Any]:
        srv = self.server
        return {
            "messages": query(srv, "SELECT COUNT(*), MAX(id) FROM support_messages"),
            "tickets": query(srv, "SELECT number, status, assignee_id FROM tickets ORDER BY 1"),
            "operators": query(
                srv, "SELECT id, email, active, password_hash FROM operators ORDER BY id"
            ),
            "canned": query(srv, "SELECT id, name, text FROM canned_responses ORDER BY id"),
            "visitors": query(srv, "SELECT COUNT(*) FROM visitors"),
            "attachments": query(srv, "SELECT COUNT(*) FROM attachments"),
            "cursors": query(
                srv, "SELECT ticket_id, reader, last_read_id FROM read_cursors ORDER BY 1, 2"
            ),
            "tokens": query(srv, "SELECT COUNT(*) FROM api_tokens"),
            "webhooks": query(srv, "SELECT COUNT(*) FROM webhooks"),
            "push": query(srv, "SELECT COUNT(*) FROM push_subscriptions"),
        }


@pytest.fixture(scope="module")
def world(server: ServerProcess) -> World:
    return World(server)


_http = httpx.Client(timeout=30)


def _send(
    server: ServerProcess, method: str, url: str, kw: dict[str, Any], **extra: Any
) -> httpx.Response:
    headers = {**kw.get("headers", {}), **extra.pop("headers", {})}
    cookies = extra.pop("cookies", None)
    if cookies:  # sent as a plain header: one shared client, no cookie jar in between
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    return _http.request(method, server.url + url, **{**kw, "headers": headers}, **extra)


def _refused(r: httpx.Response, status: int, what: str) -> None:
    assert r.status_code == status, (what, r.request.method, r.request.url, r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    assert set(r.json()) == {"error"}


def test_every_admin_endpoint_refuses_a_missing_dead_or_foreign_credential(
    server: ServerProcess, world: World
) -> None:
    before = world.state()
    # A session that expired (moved into the past in the database, as time would).
    expired = login(server)
    expired_cookie = expired.http.cookies["td_session"]
    query(
        server,
        "UPDATE sessions SET expires_at = $1 WHERE id_hash = $2",
        "2000-01-01 00:00:00.000000",
        sid_hash(expired_cookie),
    )
    # A session that was ended by logging out.
    revoked = login(server)
    revoked_cookie = revoked.http.cookies["td_session"]
    assert revoked.post("/api/admin/logout").status_code == 200
    # An operator who was deactivated. Deactivating also revokes the sessions; the row is
    # put back to "not revoked" so that only the deactivation stands in the way.
    agent = login(server, AGENT_EMAIL, AGENT_PASSWORD)
    agent_cookie = agent.http.cookies["td_session"]
    assert world.admin.post(f"/api/admin/operators/{world.agent_id}/deactivate").status_code == 200
    query(
        server, "UPDATE sessions SET revoked = $1 WHERE id_hash = $2", False, sid_hash(agent_cookie)
    )
    try:
        credentials: list[tuple[str, dict[str, Any]]] = [
            ("no session", {}),
            ("forged session", {"cookies": {"td_session": "A" * 43}}),
            (
                "expired session",
                {
                    "cookies": {"td_session": expired_cookie},
                    "headers": {"X-CSRF-Token": expired.csrf},
                },
            ),
            (
                "revoked session",
                {
                    "cookies": {"td_session": revoked_cookie},
                    "headers": {"X-CSRF-Token": revoked.csrf},
                },
            ),
            (
                "deactivated operator",
                {"cookies": {"td_session": agent_cookie}, "headers": {"X-CSRF-Token": agent.csrf}},
            ),
            ("visitor token", {"headers": {"Authorization": f"Bearer {world.visitor.token}"}}),
        ]
        for method, url, kw in world.operations():
            for what, cred in credentials:
                r = _send(server, method, url, kw, **cred)
                _refused(r, 401, what)
            # An API-token-looking bearer that is not a token: refused (401 where tokens
            # are accepted at all, 403 elsewhere).
            r = _send(server, method, url, kw, headers={"Authorization": "Bearer td_" + "x" * 40})
            assert r.status_code in (401, 403), (url, r.status_code)
    finally:
        assert (
            world.admin.post(f"/api/admin/operators/{world.agent_id}/activate").status_code == 200
        )
    after = world.state()
    # The only changes are the ones this test made on purpose (de/activating the agent).
    assert {k: v for k, v in after.items() if k != "operators"} == {
        k: v for k, v in before.items() if k != "operators"
    }
    assert after["operators"] == before["operators"]


def test_every_state_change_needs_the_sessions_csrf_token(
    server: ServerProcess, world: World
) -> None:
    before = world.state()
    op = login(server)
    other = login(server)  # a second, valid session: its token is not this session's
    cookie = {"td_session": op.http.cookies["td_session"]}
    unsafe = [(m, u, kw) for m, u, kw in world.operations() if m not in SAFE]
    assert len(unsafe) >= 20
    for method, url, kw in unsafe:
        for what, headers in (
            ("no token", {}),
            ("wrong token", {"X-CSRF-Token": "wrong"}),
            ("empty token", {"X-CSRF-Token": ""}),
            ("another session's token", {"X-CSRF-Token": other.csrf}),
        ):
            r = _send(server, method, url, kw, cookies=cookie, headers=headers)
            _refused(r, 403, what)
            assert r.json()["error"]["code"] == "csrf_failed"
        # A cross-site form post (no custom header possible) is refused the same way.
        r = httpx.request(
            method,
            server.url + url,
            cookies=cookie,
            content=b"ticketId=x&message=y",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Origin": "https://evil.example",
            },
        )
        _refused(r, 403, "form post")
    assert world.state() == before
    # The session itself is fine: with its own token the same session works.
    r = op.http.get("/api/admin/me")
    assert r.status_code == 200 and r.json()["csrf_token"] == op.csrf


def test_login_issues_a_new_session_id_and_a_safe_cookie(server: ServerProcess) -> None:
    # Session fixation: an attacker plants a session id before the victim logs in.
    planted = "attacker-chosen-session-id-0123456789abcdef"
    http = httpx.Client(base_url=server.url, cookies={"td_session": planted})
    r = http.post("/api/admin/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert r.status_code == 200
    fresh = r.cookies["td_session"]
    assert fresh != planted and len(fresh) >= 32
    assert (
        httpx.get(server.url + "/api/admin/me", cookies={"td_session": planted}).status_code == 401
    )
    # Each login is its own session, with its own CSRF token.
    again = httpx.post(
        server.url + "/api/admin/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    assert again.cookies["td_session"] != fresh
    assert again.json()["csrf_token"] != r.json()["csrf_token"]
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    # The server keeps only a hash of the session id.
    assert query(server, "SELECT COUNT(*) FROM sessions WHERE id_hash = $1", fresh) == [(0,)]
    assert query(server, "SELECT COUNT(*) FROM sessions WHERE id_hash = $1", sid_hash(fresh)) == [
        (1,)
    ]


def test_no_cors_for_foreign_origins(server: ServerProcess, world: World) -> None:
    evil = "https://evil.example"
    r = httpx.options(
        server.url + "/api/admin/support/reply",
        headers={
            "Origin": evil,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-csrf-token, content-type",
        },
    )
    assert "access-control-allow-origin" not in r.headers
    r = world.admin.http.get("/api/admin/me", headers={"Origin": evil})
    assert "access-control-allow-origin" not in r.headers
    assert "access-control-allow-credentials" not in r.headers


ORIGINS_REFUSED = [
    "https://evil.example",
    "null",
    None,  # no Origin header at all
    "http://127.0.0.1:1",  # another port
    "https://127.0.0.1:{port}",  # another scheme
    "http://127.0.0.1:{port}.evil.example",
    "http://evil.example/?http://127.0.0.1:{port}",
    "http://localhost:{port}@evil.example",
]


def test_operator_socket_refuses_foreign_origins_and_dead_sessions(
    server: ServerProcess, world: World
) -> None:
    cookie = world.admin.http.cookies["td_session"]
    revoked = login(server)
    revoked_cookie = revoked.http.cookies["td_session"]
    assert revoked.post("/api/admin/logout").status_code == 200
    expired = login(server)
    query(
        server,
        "UPDATE sessions SET expires_at = $1 WHERE id_hash = $2",
        "2000-01-01 00:00:00.000000",
        sid_hash(expired.http.cookies["td_session"]),
    )

    async def refused(sid: str, origin: str | None) -> None:
        with pytest.raises(InvalidStatus) as e:
            await operator_socket(server.ws_url, sid, origin)  # type: ignore[arg-type]
        assert e.value.response.status_code == 403

    async def go() -> None:
        for origin in ORIGINS_REFUSED:
            await refused(cookie, origin.format(port=server.port) if origin else None)
        for sid in ("", "forged", revoked_cookie, expired.http.cookies["td_session"]):
            await refused(sid, server.url)
        # The server's own origin and the configured ones are accepted.
        for origin in (server.url, f"http://localhost:{server.port}"):
            sock, ready = await operator_socket(server.ws_url, cookie, origin)
            assert ready["type"] == "ready"
            await sock.close()

    asyncio.run(asyncio.wait_for(go(), 90))


@pytest.mark.parametrize("how", ["logout", "deactivate", "password reset", "expiry"])
def test_open_operator_socket_is_closed_when_the_session_ends(
    server: ServerProcess, world: World, how: str
) -> None:
    agent = login(server, AGENT_EMAIL, AGENT_PASSWORD)
    cookie = agent.http.cookies["td_session"]

    def end() -> None:
        if how == "logout":
            assert agent.post("/api/admin/logout").status_code == 200
        elif how == "deactivate":
            r = world.admin.post(f"/api/admin/operators/{world.agent_id}/deactivate")
            assert r.status_code == 200
        elif how == "password reset":
            r = world.admin.post(
                f"/api/admin/operators/{world.agent_id}/password",
                json={"password": AGENT_PASSWORD},
            )
            assert r.status_code == 200
        else:
            query(
                server,
                "UPDATE sessions SET expires_at = $1 WHERE id_hash = $2",
                "2000-01-01 00:00:00.000000",
                sid_hash(cookie),
            )

    async def go() -> int | None:
        sock, _ = await operator_socket(server.ws_url, cookie, server.url)
        await sock.send({"type": "ping"})
        await sock.until("pong")
        await asyncio.to_thread(end)
        with pytest.raises(ConnectionClosed):
            await sock.until("never", timeout=10)  # "within seconds"
        return sock.conn.close_code

    try:
        code = asyncio.run(asyncio.wait_for(go(), 60))
        assert code == 4401
        assert agent.http.get("/api/admin/me").status_code == 401
    finally:
        if how == "deactivate":
            world.admin.post(f"/api/admin/operators/{world.agent_id}/activate")
