"""The load client: conversations over real sockets, paced, with timestamps in the payload.

One asyncio process (uvloop) plays every visitor and operator. Each conversation is a
visitor with an open ticket; a single open-loop scheduler draws message times from a Poisson
process (rate = conversations x per-conversation rate) and gives each one to a random
conversation, which alternates: operator reply, visitor message, operator reply, ...

* Operator reply: as the dashboard sends it, a `send` frame on the operator's socket
  (`--reply-via socket`, the default; stored = its `ack`), or `POST /api/admin/support/reply`
  from a small pool of operators, each an `httpx.AsyncClient` with keep-alive connections
  (`--reply-via http`). Its text carries the monotonic time taken just before it is sent;
  the latency is from then to the frame's arrival on the visitor's socket (the same clock:
  one process).
* Visitor message: a `send` frame on the visitor socket; stored = the `ack`, delivered = the
  frame's arrival on an operator dashboard socket (`/ws/operator`).

The scheduler never waits for answers (open loop), so a slow server shows up as latency and
as achieved < offered, not as a politely slower client. Every loop is bounded in time, every
queue in count; everything is on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

# httpcore asks `import sniffio` on every request; without sniffio installed each failed
# import searches sys.path again (a fifth of the client's CPU under load). A None entry
# makes the import fail at once; httpcore then assumes asyncio, which is what this is.
sys.modules.setdefault("sniffio", None)  # type: ignore[arg-type]

REPLY = "R"
VISITOR = "V"
SETUP = -2
WARMUP = -1
MAX_INFLIGHT = 4000  # sends not yet answered, beyond which the client skips (and counts) sends


def now_ns() -> int:
    return time.perf_counter_ns()


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(q / 100 * len(s) + 0.5)) - 1))
    return s[k]


@dataclass
class Window:
    """What happened to the messages *sent* during one measurement window."""

    index: int
    started: float = 0.0
    ended: float = 0.0
    sent: dict[str, int] = field(default_factory=lambda: {REPLY: 0, VISITOR: 0})
    stored: dict[str, int] = field(default_factory=lambda: {REPLY: 0, VISITOR: 0})
    delivered: dict[str, list[float]] = field(default_factory=lambda: {REPLY: [], VISITOR: []})
    store_ms: dict[str, list[float]] = field(default_factory=lambda: {REPLY: [], VISITOR: []})
    errors: dict[str, int] = field(default_factory=dict)
    skipped: int = 0  # client-side: too many sends in flight
    duplicates: int = 0
    server_cpu: float = 0.0  # CPU seconds used in the window by the server process
    services_cpu: float = 0.0  # ... by PostgreSQL + Redis
    client_cpu: float = 0.0  # ... by this load client
    system_cpu: float = 0.0  # ... by the whole machine (to see other load)

    @property
    def seconds(self) -> float:
        return max(1e-9, self.ended - self.started)

    def summary(self) -> dict[str, Any]:
        d = self.seconds
        rep, vis = self.delivered[REPLY], self.delivered[VISITOR]
        sent = self.sent[REPLY] + self.sent[VISITOR]
        return {
            "seconds": round(d, 3),
            "offered_per_s": (sent + self.skipped) / d,
            "sent_per_s": sent / d,
            "stored_per_s": (self.stored[REPLY] + self.stored[VISITOR]) / d,
            "delivered_per_s": (len(rep) + len(vis)) / d,
            "replies_sent": self.sent[REPLY],
            "replies_delivered": len(rep),
            "visitor_sent": self.sent[VISITOR],
            "visitor_delivered": len(vis),
            "lost": sent - len(rep) - len(vis),
            "reply_p50_ms": percentile(rep, 50),
            "reply_p99_ms": percentile(rep, 99),
            "reply_mean_ms": statistics.fmean(rep) if rep else None,
            "reply_max_ms": max(rep) if rep else None,
            "visitor_p50_ms": percentile(vis, 50),
            "visitor_p99_ms": percentile(vis, 99),
            "reply_http_p50_ms": percentile(self.store_ms[REPLY], 50),
            "ack_p50_ms": percentile(self.store_ms[VISITOR], 50),
            "ack_p99_ms": percentile(self.store_ms[VISITOR], 99),
            "errors": dict(self.errors),
            "skipped": self.skipped,
            "duplicates": self.duplicates,
            "server_cpu_pct": 100 * self.server_cpu / d,
            "services_cpu_pct": 100 * self.services_cpu / d,
            "client_cpu_pct": 100 * self.client_cpu / d,
            # Server (+ PostgreSQL and Redis) CPU per message delivered: a cost that other
            # load on the machine changes much less than it changes latency.
            "cpu_ms_per_msg": 1000
            * (self.server_cpu + self.services_cpu)
            / max(1, len(rep) + len(vis)),
            # The server process alone (with its workers), the figure issue 24 targets.
            "server_cpu_ms_per_msg": 1000 * self.server_cpu / max(1, len(rep) + len(vis)),
            "services_cpu_ms_per_msg": 1000 * self.services_cpu / max(1, len(rep) + len(vis)),
            "other_cpu_pct": 100
            * max(0.0, self.system_cpu - self.server_cpu - self.services_cpu - self.client_cpu)
            / d,
        }


class Recorder:
    """Every message in flight, by its (unique) text; the texts carry the send time."""

    def __init__(self) -> None:
        self.window = SETUP
        self.windows: dict[int, Window] = {}
        self.pending: dict[str, int] = {}  # text -> window it was sent in
        self.waiters: dict[str, asyncio.Future[Any]] = {}
        self.inflight = 0

    def text(self, kind: str, conv: int) -> str:
        return f"{kind}|{self.window}|{now_ns()}|{conv}|{uuid.uuid4().hex[:8]}"

    def _win(self, w: int) -> Window | None:
        return self.windows.get(w)

    def sent(self, kind: str, text: str) -> None:
        self.pending[text] = self.window
        win = self._win(self.window)
        if win is not None:
            win.sent[kind] += 1

    def expect(self, text: str) -> asyncio.Future[Any]:
        """A future set when `text` is delivered (or, for "ack:" + text, acknowledged)."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiters[text] = fut
        return fut

    def stored(self, kind: str, text: str) -> None:
        t = now_ns()
        parts = text.split("|")
        try:
            win = self._win(int(parts[1]))
            t0 = int(parts[2])
        except (IndexError, ValueError):
            return
        if win is not None:
            win.stored[kind] += 1
            win.store_ms[kind].append((t - t0) / 1e6)

    def delivered(self, kind: str, text: str) -> None:
        t = now_ns()
        fut = self.waiters.pop(text, None)
        if fut is not None and not fut.done():
            fut.set_result(t)
        w = self.pending.pop(text, None)
        if w is None:
            parts = text.split("|")
            if len(parts) == 5:
                with contextlib.suppress(ValueError):
                    win = self._win(int(parts[1]))
                    if win is not None:
                        win.duplicates += 1
            return
        win = self._win(w)
        if win is not None:
            win.delivered[kind].append((t - int(text.split("|")[2])) / 1e6)

    def error(self, what: str) -> None:
        win = self._win(self.window)
        if win is not None:
            win.errors[what] = win.errors.get(what, 0) + 1


@dataclass
class Conv:
    idx: int
    op: int = 0
    turn: int = 0
    ws: ClientConnection | None = None
    token: str = ""
    ticket: str = ""
    last_id: int = 0
    task: asyncio.Task[None] | None = None


def _visitor_frame(rec: Recorder, raw: str | bytes) -> dict[str, Any] | None:
    try:
        f = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(f, dict):
        return None
    kind = f.get("type")
    if kind == "message":
        m = f.get("message") or {}
        text = m.get("message", "")
        if m.get("sender_type") == "admin" and text[:2] == "R|":
            rec.delivered(REPLY, text)
    elif kind == "ack":
        text = (f.get("message") or {}).get("message", "")
        if text[:2] == "V|":
            rec.stored(VISITOR, text)
            fut = rec.waiters.pop("ack:" + text, None)
            if fut is not None and not fut.done():
                fut.set_result(f.get("ticketId"))
    return f


async def _read_visitor(rec: Recorder, ws: ClientConnection) -> None:
    with contextlib.suppress(ConnectionClosed):
        async for raw in ws:
            _visitor_frame(rec, raw)


async def _read_dashboard(rec: Recorder, ws: ClientConnection, record: bool) -> None:
    with contextlib.suppress(ConnectionClosed):
        async for raw in ws:
            try:
                f = json.loads(raw)
            except ValueError:
                continue
            kind = f.get("type")
            if kind == "ack":  # a reply this dashboard sent was stored
                text = (f.get("message") or {}).get("message", "")
                if text[:2] == "R|":
                    rec.stored(REPLY, text)
            elif kind == "error" and f.get("client_msg_id"):
                rec.error(f"reply: {f.get('code')}")
            if not record:
                continue
            if kind == "message":
                m = f.get("message") or {}
                text = m.get("message", "")
                if m.get("sender_type") == "customer" and text[:2] == "V|":
                    rec.delivered(VISITOR, text)


class Target:
    """A system under load: how to add a conversation and how each side sends."""

    name = "target"
    rec: Recorder

    async def open(self) -> None: ...

    async def add_conversation(self, idx: int) -> Conv:
        raise NotImplementedError

    async def reply(self, conv: Conv, text: str) -> None:
        raise NotImplementedError

    async def visitor_send(self, conv: Conv, text: str) -> None:
        raise NotImplementedError

    async def close(self) -> None: ...


# ------------------------------------------------------------------ the bare relay


class RelayTarget(Target):
    """The floor: operators and visitors are plain sockets on bench/relay.py."""

    name = "relay"

    def __init__(self, rec: Recorder, ws_url: str, operators: int = 4) -> None:
        self.rec, self.ws_url, self.n_ops = rec, ws_url, operators
        self.ops: list[ClientConnection] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.convs: list[Conv] = []

    async def _connect(self, ident: str) -> ClientConnection:
        ws = await connect(self.ws_url, open_timeout=30, max_size=2**20, ping_interval=None)
        await ws.send(json.dumps({"type": "hello", "id": ident}))
        ready = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert ready.get("type") == "ready", ready
        return ws

    async def open(self) -> None:
        for k in range(self.n_ops):
            ws = await self._connect(f"op{k}")
            self.ops.append(ws)
            self.tasks.append(asyncio.create_task(_read_dashboard(self.rec, ws, True)))

    async def add_conversation(self, idx: int) -> Conv:
        conv = Conv(idx=idx, op=idx % self.n_ops)
        conv.ws = await self._connect(f"v{idx}")
        conv.task = asyncio.create_task(_read_visitor(self.rec, conv.ws))
        text = f"R|{SETUP}|{now_ns()}|{idx}|setup"
        fut = self.rec.expect(text)
        await self.reply(conv, text)
        await asyncio.wait_for(fut, 30)
        self.convs.append(conv)
        return conv

    async def reply(self, conv: Conv, text: str) -> None:
        frame = {
            "to": f"v{conv.idx}",
            "type": "message",
            "message": {"sender_type": "admin", "message": text},
        }
        await self.ops[conv.op].send(json.dumps(frame))

    async def visitor_send(self, conv: Conv, text: str) -> None:
        assert conv.ws is not None
        frame = {
            "to": f"op{conv.op}",
            "type": "message",
            "message": {"sender_type": "customer", "message": text},
        }
        await conv.ws.send(json.dumps(frame))

    async def close(self) -> None:
        for conv in self.convs:
            if conv.task:
                conv.task.cancel()
        await asyncio.gather(
            *(c.ws.close() for c in self.convs if c.ws),
            *(ws.close() for ws in self.ops),
            return_exceptions=True,
        )
        for t in self.tasks:
            t.cancel()


# ------------------------------------------------------------------ TrustDesk


class TrustDeskTarget(Target):
    """The real server: visitors on /ws/visitor, operators over HTTP + one dashboard socket."""

    name = "trustdesk"

    def __init__(
        self,
        rec: Recorder,
        url: str,
        ws_url: str,
        admin: tuple[str, str],
        operators: int = 4,
        conns_per_operator: int = 8,
        dashboards: int = 1,
        reply_via: str = "http",
    ) -> None:
        self.rec, self.url, self.ws_url, self.admin = rec, url, ws_url, admin
        self.reply_via = reply_via
        self.n_ops, self.per_op, self.n_dash = operators, conns_per_operator, dashboards
        self.ops: list[httpx.AsyncClient] = []
        # Requests wait for one of an operator's connections here, in a cheap FIFO, rather
        # than in httpcore's pool, whose bookkeeping grows with its queue (and would take
        # CPU from the server on a 2-core machine once the server falls behind).
        self.op_slots: list[asyncio.Semaphore] = []
        self.dash: list[ClientConnection] = []
        self.dash_tasks: list[asyncio.Task[None]] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.convs: list[Conv] = []
        self.all_convs: list[Conv] = []
        self.visitor_slots = asyncio.Semaphore(64)  # see op_slots
        self.visitor_http = httpx.AsyncClient(
            base_url=url,
            timeout=60,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        )

    async def _login(self, email: str, password: str) -> httpx.AsyncClient:
        c = httpx.AsyncClient(
            base_url=self.url,
            timeout=60,
            limits=httpx.Limits(max_connections=self.per_op, max_keepalive_connections=self.per_op),
        )
        r = await c.post("/api/admin/login", json={"email": email, "password": password})
        r.raise_for_status()
        c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        return c

    async def open(self) -> None:
        admin = await self._login(*self.admin)
        self.ops.append(admin)
        self.op_slots = [asyncio.Semaphore(self.per_op) for _ in range(self.n_ops)]
        for k in range(1, self.n_ops):
            email, password = f"agent{k}@bench.invalid", f"bench-password-{k}-long-enough"
            r = await admin.post(
                "/api/admin/operators",
                json={"email": email, "name": f"Agent {k}", "password": password, "role": "agent"},
            )
            if r.status_code not in (200, 201, 409):
                raise RuntimeError(f"creating an operator: {r.status_code} {r.text}")
            self.ops.append(await self._login(email, password))
        await self.add_dashboards(self.n_dash)

    async def add_dashboards(self, count: int) -> None:
        """Open operator dashboard sockets (the first one ever opened times deliveries)."""
        for _ in range(count):
            k = len(self.dash)
            sid = self.ops[k % len(self.ops)].cookies.get("td_session")
            ws = await connect(
                self.ws_url + "/ws/operator",
                open_timeout=30,
                ping_interval=None,
                max_size=2**24,
                additional_headers={"Cookie": f"td_session={sid}", "Origin": self.url},
            )
            await ws.send(json.dumps({"type": "hello", "since": 0}))
            ready = json.loads(await asyncio.wait_for(ws.recv(), 30))
            assert ready.get("type") == "ready", ready
            self.dash.append(ws)
            task = asyncio.create_task(_read_dashboard(self.rec, ws, k == 0))
            self.tasks.append(task)
            self.dash_tasks.append(task)

    async def drop_dashboards(self, count: int) -> None:
        for _ in range(min(count, len(self.dash) - 1)):
            ws, task = self.dash.pop(), self.dash_tasks.pop()
            task.cancel()
            await ws.close()

    async def _visitor_request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        async with self.visitor_slots:
            return await self.visitor_http.request(method, url, **kw)

    async def _session(self) -> str:
        r = await self._visitor_request("POST", "/api/support/session")
        r.raise_for_status()
        return str(r.json()["token"])

    async def connect_visitor(self, token: str, ticket: str | None = None) -> ClientConnection:
        # No client keepalive pings: a browser sends none (the widget pings in JSON every
        # 20 s), and the library's would close sockets of a server that is merely slow.
        ws = await connect(
            self.ws_url + "/ws/visitor", open_timeout=30, max_size=2**20, ping_interval=None
        )
        await ws.send(json.dumps({"type": "hello", "token": token, "ticketId": ticket, "since": 0}))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            f = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if f.get("type") == "ready":
                return ws
            if f.get("type") == "error":
                raise RuntimeError(f"visitor hello refused: {f}")
        raise TimeoutError("no ready frame")

    async def add_conversation(self, idx: int) -> Conv:
        conv = Conv(idx=idx, op=idx % self.n_ops)
        self.all_convs.append(conv)  # closed on close(), even if this set-up fails
        conv.token = await self._session()
        conv.ws = await self.connect_visitor(conv.token)
        conv.task = asyncio.create_task(_read_visitor(self.rec, conv.ws))
        # The first message creates the ticket (and the bot greeting).
        text = f"V|{SETUP}|{now_ns()}|{idx}|setup"
        ack = self.rec.expect("ack:" + text)
        await conv.ws.send(
            json.dumps({"type": "send", "message": text, "client_msg_id": uuid.uuid4().hex})
        )
        conv.ticket = str(await asyncio.wait_for(ack, 30))
        # The first reply posts "operator joined": keep it out of the measurements.
        text = f"R|{SETUP}|{now_ns()}|{idx}|setup"
        fut = self.rec.expect(text)
        await self.reply(conv, text)
        await asyncio.wait_for(fut, 30)
        self.convs.append(conv)
        return conv

    async def reply(self, conv: Conv, text: str) -> None:
        if self.reply_via == "socket" and self.dash:
            # As the dashboard does: a `send` frame on the operator's socket; the `ack`
            # (read by _read_dashboard) marks it stored.
            ws = self.dash[conv.op % len(self.dash)]
            frame = {"type": "send", "ticketId": conv.ticket, "message": text}
            await ws.send(json.dumps({**frame, "client_msg_id": uuid.uuid4().hex}))
            return
        async with self.op_slots[conv.op]:
            r = await self.ops[conv.op].post(
                "/api/admin/support/reply",
                json={"ticketId": conv.ticket, "message": text, "client_msg_id": uuid.uuid4().hex},
            )
        if r.status_code != 200:
            raise RuntimeError(f"reply: HTTP {r.status_code}")
        self.rec.stored(REPLY, text)

    async def visitor_send(self, conv: Conv, text: str) -> None:
        assert conv.ws is not None
        await conv.ws.send(
            json.dumps({"type": "send", "message": text, "client_msg_id": uuid.uuid4().hex})
        )

    async def close(self) -> None:
        for conv in self.all_convs:
            if conv.task:
                conv.task.cancel()
        await asyncio.gather(
            *(c.ws.close() for c in self.all_convs if c.ws),
            *(ws.close() for ws in self.dash),
            return_exceptions=True,
        )
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(
            *(c.aclose() for c in self.ops), self.visitor_http.aclose(), return_exceptions=True
        )


class PollingTarget(TrustDeskTarget):
    """The spec's widget without sockets: send over HTTP, poll for new messages every 3 s."""

    name = "polling"

    def __init__(self, *args: Any, interval: float = 3.0, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.interval = interval

    def _auth(self, conv: Conv) -> dict[str, str]:
        return {"Authorization": f"Bearer {conv.token}"}

    async def add_conversation(self, idx: int) -> Conv:
        conv = Conv(idx=idx, op=idx % self.n_ops)
        conv.token = await self._session()
        text = f"V|{SETUP}|{now_ns()}|{idx}|setup"
        r = await self._visitor_request(
            "POST",
            "/api/support/send-message",
            headers=self._auth(conv),
            json={"message": text, "client_msg_id": uuid.uuid4().hex},
        )
        r.raise_for_status()
        conv.ticket = r.json()["ticketId"]
        conv.last_id = int(r.json()["message"]["id"])
        text = f"R|{SETUP}|{now_ns()}|{idx}|setup"
        fut = self.rec.expect(text)
        await self.reply(conv, text)
        conv.task = asyncio.create_task(self._poll(conv, random.uniform(0, self.interval)))
        self.tasks.append(conv.task)  # cancelled on close, even if this set-up fails
        await asyncio.wait_for(fut, self.interval + 30)
        self.convs.append(conv)
        return conv

    async def _poll(self, conv: Conv, first_delay: float) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(first_delay)
        next_t = loop.time()
        while True:
            try:
                r = await self._visitor_request(
                    "GET",
                    f"/api/support/messages/{conv.ticket}",
                    params={"after": conv.last_id},
                    headers=self._auth(conv),
                )
                if r.status_code == 200:
                    for m in r.json()["messages"]:
                        conv.last_id = max(conv.last_id, int(m["id"]))
                        if m["sender_type"] == "admin" and m["message"][:2] == "R|":
                            self.rec.delivered(REPLY, m["message"])
                else:
                    self.rec.error(f"poll: HTTP {r.status_code}")
            except httpx.HTTPError as exc:
                self.rec.error(f"poll: {type(exc).__name__}")
            except RuntimeError:  # the client was closed: the run is over
                return
            next_t += self.interval
            await asyncio.sleep(max(0.0, next_t - loop.time()))

    async def visitor_send(self, conv: Conv, text: str) -> None:
        r = await self._visitor_request(
            "POST",
            "/api/support/send-message",
            headers=self._auth(conv),
            json={"message": text, "ticketId": conv.ticket, "client_msg_id": uuid.uuid4().hex},
        )
        if r.status_code != 200:
            raise RuntimeError(f"send-message: HTTP {r.status_code}")
        self.rec.stored(VISITOR, text)


# ------------------------------------------------------------------ driving the load


Meter = Callable[[], float]


async def _send_one(target: Target, kind: str, conv: Conv, text: str) -> None:
    rec = target.rec
    rec.inflight += 1
    try:
        if kind == REPLY:
            await target.reply(conv, text)
        else:
            await target.visitor_send(conv, text)
    except Exception as exc:  # counted, never fatal: the server may be overloaded
        msg = str(exc)[:60] or type(exc).__name__
        rec.error(f"{'reply' if kind == REPLY else 'visitor'}: {msg}")
    finally:
        rec.inflight -= 1


async def drive(
    target: Target,
    convs: list[Conv],
    rate_per_conv: float,
    seconds: float,
    tasks: set[asyncio.Task[None]],
) -> None:
    """Offer Poisson traffic at len(convs) * rate_per_conv messages/s for `seconds`."""
    rec = target.rec
    loop = asyncio.get_running_loop()
    total = rate_per_conv * len(convs)
    start = loop.time()
    t_end = start + seconds
    next_t = start + random.expovariate(total)
    while True:
        now = loop.time()
        if now >= t_end:
            return
        burst = 0
        while next_t <= now and burst < 5000:
            burst += 1
            conv = random.choice(convs)
            conv.turn ^= 1
            kind = REPLY if conv.turn else VISITOR
            if rec.inflight >= MAX_INFLIGHT:
                win = rec.windows.get(rec.window)
                if win is not None:
                    win.skipped += 1
            else:
                text = rec.text(kind, conv.idx)
                rec.sent(kind, text)
                t = asyncio.create_task(_send_one(target, kind, conv, text))
                tasks.add(t)
                t.add_done_callback(tasks.discard)
            next_t += random.expovariate(total)
        await asyncio.sleep(max(0.0, min(next_t, t_end) - loop.time()))


_window_ids = iter(range(10**9))


async def measure(
    target: Target,
    convs: list[Conv],
    rate_per_conv: float,
    *,
    warmup: float,
    runs: int,
    seconds: float,
    meters: dict[str, Meter],
    drain: float = 5.0,
    during: Callable[[int], Awaitable[None]] | None = None,
) -> list[dict[str, Any]]:
    """Warm up, then `runs` back-to-back windows of `seconds` each; one summary per window."""
    rec = target.rec
    tasks: set[asyncio.Task[None]] = set()
    rec.window = WARMUP
    if warmup > 0:
        await drive(target, convs, rate_per_conv, warmup, tasks)
    mine: list[Window] = []
    for _ in range(runs):
        win = Window(index=next(_window_ids))
        rec.windows[win.index] = win
        rec.window = win.index
        before = {k: m() for k, m in meters.items()}
        win.started = time.perf_counter()
        extra = asyncio.create_task(during(win.index)) if during else None
        await drive(target, convs, rate_per_conv, seconds, tasks)
        win.ended = time.perf_counter()
        after = {k: m() for k, m in meters.items()}
        win.server_cpu = after.get("server", 0) - before.get("server", 0)
        win.services_cpu = after.get("services", 0) - before.get("services", 0)
        win.client_cpu = after.get("client", 0) - before.get("client", 0)
        win.system_cpu = after.get("system", 0) - before.get("system", 0)
        if extra is not None:
            await extra
        mine.append(win)
    rec.window = WARMUP
    # Let what was sent arrive (bounded), then forget the rest: it is counted as lost.
    ids = {w.index for w in mine}
    deadline = time.monotonic() + drain
    while time.monotonic() < deadline and any(w in ids for w in rec.pending.values()):
        await asyncio.sleep(0.05)
    for t in list(tasks):
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    rec.pending = {k: w for k, w in rec.pending.items() if w not in ids and w >= 0}
    return [w.summary() for w in mine]


async def add_conversations(
    target: Target, start: int, count: int, *, concurrency: int = 32, timeout: float = 300
) -> tuple[list[Conv], list[str]]:
    """Open `count` conversations (bounded concurrency and time); returns (opened, errors)."""
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> Conv:
        async with sem:
            return await asyncio.wait_for(target.add_conversation(i), 60)

    tasks = [asyncio.create_task(one(i)) for i in range(start, start + count)]
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    for t in pending:
        t.cancel()
    convs, errors = [], []
    for t in tasks:
        if t in done and t.exception() is None:
            convs.append(t.result())
        elif t in done:
            errors.append(f"{type(t.exception()).__name__}: {str(t.exception())[:80]}")
        else:
            errors.append("timed out")
    return convs, errors
