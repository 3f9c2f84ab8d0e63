"""Sockets and ephemeral frames cannot flood the server or the operators (issue 19, 4-6).

Each attack comes from its own loopback address (127.0.0.2x ...) so that the per-address
bounds of one test do not touch another. Bounds are lowered for this module's server.
Figures in the docstrings: what the attack did before the bounds, measured on SQLite on
2 cores, and what it does now.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.security.conftest import start_server
from tests.support.clients import OperatorClient
from tests.support.server import ADMIN_EMAIL, ADMIN_PASSWORD, ServerProcess
from tests.support.services import wait_until
from tests.support.wsclient import Socket, operator_socket
from trustdesk.realtime.events import visitor_frames

PER_IP = 8
PER_VISITOR = 3
PER_OPERATOR = 4
TICKETS_PER_VISITOR = 4
TICKETS_PER_IP = 6


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(
        tmp_path_factory,
        "socket-abuse",
        extra_env={
            "TRUSTDESK_WS_PER_IP": str(PER_IP),
            "TRUSTDESK_WS_PER_VISITOR": str(PER_VISITOR),
            "TRUSTDESK_WS_PER_OPERATOR": str(PER_OPERATOR),
            "TRUSTDESK_TICKETS_PER_VISITOR_PER_HOUR": str(TICKETS_PER_VISITOR),
            "TRUSTDESK_TICKETS_PER_IP_PER_HOUR": str(TICKETS_PER_IP),
        },
    )
    yield srv
    srv.stop()


@pytest.fixture
def admin(server: ServerProcess) -> OperatorClient:
    return OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)


def new_visitor(server: ServerProcess, ip: str) -> httpx.Client:
    http = httpx.Client(
        base_url=server.url, transport=httpx.HTTPTransport(local_address=ip), timeout=30
    )
    r = http.post("/api/support/session")
    assert r.status_code == 201, r.text
    http.headers["Authorization"] = f"Bearer {r.json()['token']}"
    return http


def token_of(http: httpx.Client) -> str:
    return http.headers["Authorization"].split()[1]


def send(http: httpx.Client, text: str, **kw: Any) -> httpx.Response:
    body = {"message": text, "client_msg_id": str(uuid.uuid4()), **kw}
    return http.post("/api/support/send-message", json=body)


def first_ticket(server: ServerProcess, ip: str) -> tuple[httpx.Client, str]:
    http = new_visitor(server, ip)
    r = send(http, "здравствуйте")
    assert r.status_code == 200, r.text
    return http, r.json()["ticketId"]


async def connect(
    server: ServerProcess, ip: str, token: str, ticket: str | None = None, **hello: Any
) -> Socket:
    conn = await websockets.connect(
        server.ws_url + "/ws/visitor", local_addr=(ip, 0), open_timeout=10
    )
    s = Socket(conn, visitor_frames)
    with contextlib.suppress(ConnectionClosed):  # (closed at once when over a bound)
        await s.send({"type": "hello", "token": token, "ticketId": ticket, "since": 0, **hello})
    return s


async def ready(server: ServerProcess, ip: str, token: str, ticket: str | None = None) -> Socket:
    s = await connect(server, ip, token, ticket)
    await s.until("ready", 10)
    return s


async def ready_once_freed(server: ServerProcess, ip: str, token: str) -> Socket:
    """A socket opened where one was just closed: the server frees its place when it has
    seen the close, a moment after the client has; until then it answers 4429."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:
        s = await connect(server, ip, token)
        try:
            await s.until("ready", 10)
            return s
        except ConnectionClosed:
            if loop.time() > deadline:
                raise


async def closed_with(s: Socket, timeout: float = 10) -> int | None:
    """Read until the server closes the socket; its close code."""
    try:
        while True:
            await asyncio.wait_for(s.conn.recv(), timeout)
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else None


async def settled(s: Socket) -> None:
    """The server has handled every frame sent before: it answers a ping after them."""
    await s.send({"type": "ping"})
    await s.until("pong", 60)


def _reads(frames: list[dict[str, Any]], ticket: str) -> list[int]:
    return [
        f["last_read_id"]
        for f in frames
        if f["type"] == "read" and f["ticketId"] == ticket and f["reader"] == "customer"
    ]


def test_read_flood_is_coalesced_and_the_last_cursor_is_written(
    server: ServerProcess, admin: OperatorClient
) -> None:
    """1,000 `read` frames, moving the cursor over 30 messages: each frame was a write
    transaction, so the dashboards got a `read` frame per move (30 of 30, measured). Now the
    cursor is written at most 4 times a second per socket: a handful of writes (1-2
    measured), and the last value sent is the one stored."""
    visitor, ticket = first_ticket(server, "127.0.0.21")
    ids = [admin.reply(ticket, f"ответ {i}")["id"] for i in range(30)]
    cookie = admin.http.cookies["td_session"]

    async def go() -> list[int]:
        op, _ = await operator_socket(server.ws_url, cookie, server.url)
        s = await ready(server, "127.0.0.21", token_of(visitor), ticket)
        for i in range(1000):
            await s.send({"type": "read", "last_read_id": ids[i * len(ids) // 1000]})
        await settled(s)
        await op.until(lambda f: ids[-1] in _reads([f], ticket), 15)
        await op.quiet(0.6)
        await s.close()
        await op.close()
        return _reads(op.frames, ticket)

    reads = asyncio.run(asyncio.wait_for(go(), 90))
    assert reads[-1] == ids[-1]
    assert len(reads) <= 6, reads
    r = admin.http.get(f"/api/admin/support/ticket/{ticket}")
    assert r.status_code == 200


def test_read_floods_do_not_slow_another_visitors_send(server: ServerProcess) -> None:
    """10 sockets x 1,000 `read` frames: another visitor's send waited behind 10,000 write
    transactions (8 s instead of 7 ms in the issue; 3.5 s measured here). Now it is
    answered at once (under a second asserted, on a busy 2-core machine)."""
    ips = [f"127.0.1.{i}" for i in range(1, 11)]
    floods = [first_ticket(server, ip) for ip in ips]
    calm = new_visitor(server, "127.0.0.23")

    async def go() -> float:
        socks = [
            await ready(server, ip, token_of(v), t) for ip, (v, t) in zip(ips, floods, strict=True)
        ]
        frame = json.dumps({"type": "read", "last_read_id": 10**9})
        for _ in range(1000):
            for s in socks:
                await s.conn.send(frame)
        async with httpx.AsyncClient(
            base_url=server.url,
            headers={"Authorization": calm.headers["Authorization"]},
            transport=httpx.AsyncHTTPTransport(local_address="127.0.0.23"),
            timeout=60,
        ) as http:
            t0 = time.perf_counter()
            r = await http.post(
                "/api/support/send-message", json={"message": "я тоже тут", "client_msg_id": "c"}
            )
            took = time.perf_counter() - t0
            assert r.status_code == 200, r.text
        for s in socks:
            await settled(s)
            await s.close()
        return took

    took = asyncio.run(asyncio.wait_for(go(), 120))
    assert took < 1.0, f"a send took {took:.2f} s during the read flood"


def _typing(frames: list[dict[str, Any]], ticket: str, sender: str) -> list[bool]:
    return [
        f["active"]
        for f in frames
        if f["type"] == "typing" and f["ticketId"] == ticket and f["sender_type"] == sender
    ]


def test_typing_floods_reach_the_other_side_as_a_few_frames(
    server: ServerProcess, admin: OperatorClient
) -> None:
    """3,000 typing frames (on, off, on, ...) were relayed 1:1 (at 624/s) to every dashboard,
    and 3,000 from a dashboard to the widget (3,000 of 3,000 measured). Now at most one
    every 0.3 s per socket and ticket (an unchanged "on" once a second), and the last state
    always arrives."""
    visitor, ticket = first_ticket(server, "127.0.0.24")
    cookie = admin.http.cookies["td_session"]

    async def go() -> tuple[list[bool], list[bool], float]:
        op, _ = await operator_socket(server.ws_url, cookie, server.url)
        s = await ready(server, "127.0.0.24", token_of(visitor), ticket)
        t0 = time.perf_counter()
        for i in range(3000):
            await s.send({"type": "typing", "active": i % 2 == 0})  # ends with "off"
        for _ in range(3000):
            await op.send({"type": "typing", "ticketId": ticket, "active": True})
        await settled(s)
        await settled(op)
        took = time.perf_counter() - t0
        await op.quiet(0.8)
        await s.quiet(0.8)
        await s.close()
        await op.close()
        return _typing(op.frames, ticket, "customer"), _typing(s.frames, ticket, "admin"), took

    to_op, to_visitor, took = asyncio.run(asyncio.wait_for(go(), 120))
    assert to_op and to_op[-1] is False, to_op
    assert len(to_op) <= took / 0.3 + 4, (len(to_op), took)
    assert to_visitor and to_visitor[-1] is True
    assert len(to_visitor) <= took + 3, (len(to_visitor), took)


def test_presence_cycles_are_coalesced(server: ServerProcess, admin: OperatorClient) -> None:
    """Connect-and-close cycles with a 2 KiB page URL: each connect and each close reached
    every dashboard (15 frames for 15 cycles measured, each with the URL). Now one
    visitor's presence is relayed at most once a second, the latest state (offline, at the
    end) always."""
    visitor, ticket = first_ticket(server, "127.0.0.25")
    cookie = admin.http.cookies["td_session"]
    url = "https://shop.example/" + "p" * 2000

    async def go() -> tuple[list[bool], float]:
        op, _ = await operator_socket(server.ws_url, cookie, server.url)
        t0 = time.perf_counter()
        for _ in range(15):
            s = await connect(server, "127.0.0.25", token_of(visitor), ticket, page_url=url)
            await s.until("ready", 10)
            await s.close()
        took = time.perf_counter() - t0

        def offline(f: dict[str, Any]) -> bool:
            return f["type"] == "presence" and f.get("ticketId") == ticket and not f["online"]

        await op.until(offline, 10)
        await op.quiet(1.5)
        await op.close()
        frames = [
            f["online"]
            for f in op.frames
            if f["type"] == "presence" and f.get("kind") == "visitor" and f["ticketId"] == ticket
        ]
        return frames, took

    frames, took = asyncio.run(asyncio.wait_for(go(), 90))
    assert frames[-1] is False
    assert len(frames) <= took + 3, (len(frames), took)


def test_sockets_per_visitor_per_address_and_per_operator_are_bounded(
    server: ServerProcess,
) -> None:
    """3,000 sockets from one address with one token were all accepted (RSS 131 -> 228 MB).
    Now the 4th socket of one token (limit 3 here, 5 by default) and the 9th of one address
    (8 here, 20 by default) are closed with 4429; other addresses are not affected, and a
    closed socket frees its place. The 5th dashboard socket of one operator (4 here) too."""

    async def go() -> None:
        one = new_visitor(server, "127.0.0.26")
        mine = [await ready(server, "127.0.0.26", token_of(one)) for _ in range(PER_VISITOR)]
        extra = await connect(server, "127.0.0.26", token_of(one))
        assert await closed_with(extra) == 4429
        await mine.pop().close()
        mine.append(await ready_once_freed(server, "127.0.0.26", token_of(one)))

        crowd = [new_visitor(server, "127.0.0.27") for _ in range(PER_IP + 1)]
        socks = [await ready(server, "127.0.0.27", token_of(v)) for v in crowd[:PER_IP]]
        over = await connect(server, "127.0.0.27", token_of(crowd[-1]))
        assert await closed_with(over) == 4429
        elsewhere = await ready(server, "127.0.0.28", token_of(crowd[-1]))
        await elsewhere.close()
        await socks.pop().close()
        socks.append(await ready_once_freed(server, "127.0.0.27", token_of(crowd[-1])))

        ops = [OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD) for _ in range(2)]
        dash = [
            (
                await operator_socket(
                    server.ws_url, ops[i % 2].http.cookies["td_session"], server.url
                )
            )[0]
            for i in range(PER_OPERATOR)
        ]
        conn = await websockets.connect(
            server.ws_url + "/ws/operator",
            origin=server.url,  # type: ignore[arg-type]
            additional_headers={"Cookie": f"td_session={ops[0].http.cookies['td_session']}"},
        )
        code = await closed_with(Socket(conn, visitor_frames))
        assert code == 4429
        for s in [*mine, *socks, *dash]:
            await s.close()

    asyncio.run(asyncio.wait_for(go(), 120))


def test_new_tickets_per_visitor_and_per_address_are_capped(server: ServerProcess) -> None:
    """One visitor opened 105 tickets in a second (only the send rate bounded it). Now the
    5th new ticket in an hour of one visitor (4 here, 10 by default) gets 429 with
    Retry-After over HTTP and a `rate_limited` error frame on the socket, and the 7th of
    one address (6 here, 30 by default) too; writing in an open ticket still works."""
    ip = "127.0.0.29"
    first = new_visitor(server, ip)
    for i in range(TICKETS_PER_VISITOR):
        r = send(first, f"обращение {i}", new_ticket=True)
        assert r.status_code == 200, r.text
    r = send(first, "ещё одно", new_ticket=True)
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(r.headers["Retry-After"]) <= 3600
    assert send(first, "в открытое").status_code == 200

    async def over_socket() -> dict[str, Any]:
        s = await ready(server, ip, token_of(first))
        await s.send(
            {"type": "send", "message": "новое", "client_msg_id": "n1", "new_ticket": True}
        )
        frame = await s.until(lambda f: f["type"] in ("error", "ack"), 10)
        await s.close()
        return frame

    frame = asyncio.run(asyncio.wait_for(over_socket(), 30))
    assert frame["type"] == "error" and frame["code"] == "rate_limited", frame
    assert frame["retry_after"] >= 1

    second = new_visitor(server, ip)
    codes = [send(second, f"с того же адреса {i}", new_ticket=True).status_code for i in range(3)]
    assert codes == [200] * (TICKETS_PER_IP - TICKETS_PER_VISITOR) + [429]
    other = new_visitor(server, "127.0.0.30")
    assert send(other, "с другого адреса", new_ticket=True).status_code == 200


class _LimitedServer(ServerProcess):
    """The server started with a given RLIMIT_NOFILE (soft, hard), as a systemd unit
    without LimitNOFILE would (1,024)."""

    def __init__(self, data_dir: Path, nofile: tuple[int, int]) -> None:
        super().__init__(data_dir)
        self.nofile = nofile

    def start(self, workers: int = 1) -> ServerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "trustdesk",
            "run",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        nofile = self.nofile
        self.proc = subprocess.Popen(  # noqa: S603 - our own server
            cmd,
            env=self.env,
            stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, nofile),  # noqa: PLW1509
        )
        wait_until(self.healthy, 60, f"server on port {self.port} (log: {self.log_path})")
        return self


def _soft_nofile(pid: int) -> int:
    text = Path(f"/proc/{pid}/limits").read_text()
    m = re.search(r"Max open files\s+(\d+)", text)
    assert m, text
    return int(m.group(1))


def test_low_descriptor_limit_is_raised_or_warned_about(tmp_path: Path) -> None:
    """With 1,024 descriptors (the shipped systemd unit set no LimitNOFILE), about 1,000
    silent connections made every other request fail for 30 s, and nothing said why. Now
    the server raises its soft limit to the hard one at start, and warns in its log when
    the limit is still under 4,096."""
    low = _LimitedServer(tmp_path / "low", (1024, 1024)).start()
    try:
        wait_until(lambda: "open file limit is 1024" in low.log_path.read_text(), 10, "warning")
    finally:
        low.stop()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY or hard < 8192:
        return  # (this machine cannot show the raise)
    raised = _LimitedServer(tmp_path / "raised", (1024, hard)).start()
    try:
        assert raised.proc is not None
        assert _soft_nofile(raised.proc.pid) == hard
        assert "open file limit" not in raised.log_path.read_text()
    finally:
        raised.stop()


@pytest.fixture(scope="module")
def quick_headers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(
        tmp_path_factory.mktemp("headers"), extra_env={"TRUSTDESK_HEADER_TIMEOUT_SECONDS": "1"}
    ).start()
    yield srv
    srv.stop()


@pytest.mark.parametrize("sent", [b"", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "])
def test_slow_or_silent_headers_are_timed_out(quick_headers: ServerProcess, sent: bytes) -> None:
    """A connection that sent nothing, or half its headers, was kept open for ever (uvicorn
    has no header timeout): ~1,000 of them exhausted 1,024 descriptors. Now it is closed
    once `TRUSTDESK_HEADER_TIMEOUT_SECONDS` (1 here, 10 by default) have passed."""

    async def go() -> float:
        reader, writer = await asyncio.open_connection("127.0.0.1", quick_headers.port)
        writer.write(sent)
        await writer.drain()
        t0 = time.perf_counter()
        assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()
        return time.perf_counter() - t0

    took = asyncio.run(go())
    assert 0.5 < took < 5, took
    assert httpx.get(quick_headers.url + "/healthz").status_code == 200
