"""Rate limits and size limits: login brute force, message floods, bodies and frames.

Limits are lowered for this module's server. Clients come from different loopback
addresses (127.0.0.2, 127.0.0.3, ...) so that per-address limits can be seen to hit the
flooding address and nobody else. Nothing here measures time: "not slowed down" means
"answered at once with success while the flooder is refused".
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.security.conftest import AGENT_EMAIL, AGENT_PASSWORD, start_server
from tests.support.clients import OperatorClient
from tests.support.inspect_db import query
from tests.support.server import ADMIN_EMAIL, ADMIN_PASSWORD, ServerProcess
from tests.support.wsclient import operator_socket

LOGIN_ATTEMPTS = 5
VISITOR_BURST = 5
IP_BURST = 12


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(
        tmp_path_factory,
        "limits",
        extra_env={
            "TRUSTDESK_LOGIN_ATTEMPTS_PER_15MIN": str(LOGIN_ATTEMPTS),
            "TRUSTDESK_VISITOR_RATE_BURST": str(VISITOR_BURST),
            "TRUSTDESK_VISITOR_RATE_PER_MINUTE": "1",
            "TRUSTDESK_IP_RATE_BURST": str(IP_BURST),
            "TRUSTDESK_IP_RATE_PER_MINUTE": "1",
        },
    )
    yield srv
    srv.stop()


def client_from(server: ServerProcess, ip: str, **kw: Any) -> httpx.Client:
    """An HTTP client whose connections come from a given loopback address."""
    return httpx.Client(
        base_url=server.url,
        transport=httpx.HTTPTransport(local_address=ip),
        timeout=30,
        **kw,
    )


def new_visitor(server: ServerProcess, ip: str) -> httpx.Client:
    http = client_from(server, ip)
    r = http.post("/api/support/session")
    assert r.status_code == 201, r.text
    http.headers["Authorization"] = f"Bearer {r.json()['token']}"
    return http


def _429(r: httpx.Response) -> None:
    assert r.status_code == 429, (r.status_code, r.text)
    assert int(r.headers["Retry-After"]) >= 1
    assert r.json()["error"]["code"] == "rate_limited"


def test_login_brute_force_is_locked_out(server: ServerProcess) -> None:
    attacker = client_from(server, "127.0.0.5")
    for i in range(LOGIN_ATTEMPTS):
        r = attacker.post("/api/admin/login", json={"email": ADMIN_EMAIL, "password": f"guess{i}"})
        assert r.status_code == 401
    # Locked: even the right password is not even checked now.
    _429(attacker.post("/api/admin/login", json={"email": ADMIN_EMAIL, "password": "guess-x"}))
    _429(attacker.post("/api/admin/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
    # Spraying many accounts from one address is limited per address too.
    codes = [
        attacker.post(
            "/api/admin/login", json={"email": f"user{i}@trust.store", "password": "x" * 8}
        ).status_code
        for i in range(LOGIN_ATTEMPTS * 5)
    ]
    assert codes[-1] == 429 and set(codes) <= {401, 429}
    _429(attacker.post("/api/admin/login", json={"email": AGENT_EMAIL, "password": AGENT_PASSWORD}))
    # Someone else, elsewhere, logs in normally; sessions that exist keep working.
    other = client_from(server, "127.0.0.6")
    r = other.post("/api/admin/login", json={"email": AGENT_EMAIL, "password": AGENT_PASSWORD})
    assert r.status_code == 200


def test_message_flood_from_one_visitor_over_http_and_socket(server: ServerProcess) -> None:
    flooder = new_visitor(server, "127.0.0.7")
    other = new_visitor(server, "127.0.0.8")
    codes = [
        flooder.post("/api/support/send-message", json={"message": f"спам {i}"}).status_code
        for i in range(VISITOR_BURST + 3)
    ]
    assert codes == [200] * VISITOR_BURST + [429] * 3
    _429(flooder.post("/api/support/send-message", json={"message": "ещё"}))
    assert other.post("/api/support/send-message", json={"message": "привет"}).status_code == 200
    stored = query(server, "SELECT COUNT(*) FROM support_messages WHERE message LIKE 'спам %'")
    assert stored == [(VISITOR_BURST,)]

    # The same visitor over the socket shares the same allowance.
    token = flooder.headers["Authorization"].split()[1]

    async def go() -> list[dict[str, Any]]:
        conn = await websockets.connect(server.ws_url + "/ws/visitor", local_addr=("127.0.0.7", 0))
        await conn.send(json.dumps({"type": "hello", "token": token, "ticketId": None, "since": 0}))
        frames = []
        for i in range(3):
            await conn.send(
                json.dumps({"type": "send", "message": f"сокет {i}", "client_msg_id": f"s{i}"})
            )
        while len([f for f in frames if f["type"] in ("ack", "error")]) < 3:
            frames.append(json.loads(await asyncio.wait_for(conn.recv(), 10)))
        await conn.close()
        return frames

    frames = asyncio.run(asyncio.wait_for(go(), 60))
    errors = [f for f in frames if f["type"] == "error"]
    assert [e["code"] for e in errors] == ["rate_limited"] * 3
    assert all(e["retry_after"] >= 1 and e["client_msg_id"] for e in errors)
    assert not [f for f in frames if f["type"] == "ack"]


def test_many_visitors_from_one_address_are_limited_together(server: ServerProcess) -> None:
    """A flood spread over many fresh visitor tokens from one address: the per-address
    limit stops it, over HTTP and over the socket, while another address is served."""
    flood_ip, calm_ip = "127.0.0.9", "127.0.0.10"
    visitors = [new_visitor(server, flood_ip) for _ in range(IP_BURST + 4)]
    codes = [
        v.post("/api/support/send-message", json={"message": f"волна {i}"}).status_code
        for i, v in enumerate(visitors)
    ]
    assert codes[:IP_BURST] == [200] * IP_BURST
    assert codes[IP_BURST:] == [429] * 4
    calm = new_visitor(server, calm_ip)
    assert calm.post("/api/support/send-message", json={"message": "спокойно"}).status_code == 200

    # Over the socket: yet more fresh visitors from the same address get no further.
    fresh = [new_visitor(server, flood_ip) for _ in range(3)]
    calm_token = calm.headers["Authorization"].split()[1]

    async def send_one(token: str, ip: str, text: str) -> dict[str, Any]:
        conn = await websockets.connect(server.ws_url + "/ws/visitor", local_addr=(ip, 0))
        try:
            await conn.send(
                json.dumps({"type": "hello", "token": token, "ticketId": None, "since": 0})
            )
            await conn.send(json.dumps({"type": "send", "message": text, "client_msg_id": "w"}))
            while True:
                f = json.loads(await asyncio.wait_for(conn.recv(), 10))
                if f["type"] in ("ack", "error"):
                    return f
        finally:
            await conn.close()

    async def go() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        flood = [
            await send_one(v.headers["Authorization"].split()[1], flood_ip, f"сокет-волна {i}")
            for i, v in enumerate(fresh)
        ]
        ok = await send_one(calm_token, calm_ip, "спокойно по сокету")
        return flood, ok

    flood, ok = asyncio.run(asyncio.wait_for(go(), 60))
    assert [f["type"] for f in flood] == ["error"] * 3
    assert {f["code"] for f in flood} == {"rate_limited"}
    assert ok["type"] == "ack"
    n = query(server, "SELECT COUNT(*) FROM support_messages WHERE message LIKE 'сокет-волна %'")
    assert n == [(0,)]


def test_forwarded_for_from_an_untrusted_peer_is_ignored(server: ServerProcess) -> None:
    """X-Forwarded-For is only believed from the trusted proxy (loopback 127.0.0.1): a
    client elsewhere cannot dodge the per-address limit by inventing addresses."""
    ip = "127.0.0.11"
    codes = []
    for i in range(IP_BURST + 2):
        v = new_visitor(server, ip)
        r = v.post(
            "/api/support/send-message",
            json={"message": f"xff {i}"},
            headers={"X-Forwarded-For": f"203.0.113.{i}", "X-Real-IP": f"198.51.100.{i}"},
        )
        codes.append(r.status_code)
    assert codes[-2:] == [429, 429]


def test_body_and_frame_size_limits(server: ServerProcess) -> None:
    v = new_visitor(server, "127.0.0.12")
    big = b'{"message": "' + b"a" * 70_000 + b'"}'
    # Declared too large: refused before it is read.
    r = v.post(
        "/api/support/send-message", content=big, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"

    # Not declared (chunked): refused as soon as it grows past the limit.
    def chunks() -> Iterator[bytes]:
        yield b'{"message": "'
        for _ in range(200):
            yield b"b" * 1024
        yield b'"}'

    r = v.post(
        "/api/support/send-message", content=chunks(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    # Uploads have their own, larger, limit; past it nothing is stored.
    before = query(server, "SELECT COUNT(*) FROM attachments")
    r = v.post(
        "/api/support/upload",
        params={"name": "huge.png"},
        content=b"\x89PNG\r\n\x1a\n" + b"\0" * (11 * 1024 * 1024),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 413, r.text
    assert query(server, "SELECT COUNT(*) FROM attachments") == before

    # (The admin's email may be locked out by the brute-force test: use the agent.)
    op = OperatorClient(server.url, AGENT_EMAIL, AGENT_PASSWORD)
    cookie = op.http.cookies["td_session"]

    async def go() -> None:
        sock, _ = await operator_socket(server.ws_url, cookie, server.url)
        await sock.conn.send(json.dumps({"type": "typing", "ticketId": "x" * 70_000}))
        assert (await sock.until("error"))["code"] == "frame_too_large"
        await sock.send({"type": "ping"})
        await sock.until("pong")
        with pytest.raises(ConnectionClosed):
            await sock.conn.send("x" * 2_000_000)
            await sock.until("never", timeout=10)

    asyncio.run(asyncio.wait_for(go(), 60))
    assert httpx.get(server.url + "/healthz").status_code == 200
