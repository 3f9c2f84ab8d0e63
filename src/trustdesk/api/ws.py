"""WebSockets: /ws/visitor (token in the first frame) and /ws/operator (session cookie).

The database is the truth; the hub carries the events. Each socket subscribes first,
then replays stored rows after the client's `since`, then streams live events, dropping
any message it has already sent. The widget's socket follows one ticket: a live message
goes out straight from its event when the socket has already sent the ticket's previous
message (`prev_id` in the event, read under the ticket's row lock); otherwise (an event
from another process that overtook an earlier one, a private note in between, a resync
after the hub dropped events) the socket fills the gap from the database first. The
operators' socket follows every ticket in commit order (store/stream.py): on SQLite a
message whose id follows the last one sent goes straight out, on PostgreSQL each new
message is read from the database in (tx, id) order below the visibility horizon, and one
held back by an older transaction still running goes out once that has ended. So nothing
is lost and nothing is shown twice.

Under `trustdesk run` (uvicorn's sans-I/O websockets protocol) a widget's frame that can
go out at once is written in the publisher's step (VisitorConn.take_now) instead of
waking the socket's pump for the loop's next turn; anything else still goes the pump's way.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import gc
import json
import logging
import re
import resource
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from trustdesk.actions import accounts, metrics, operators, routing, tickets, visitors
from trustdesk.actions.errors import ActionError, Invalid
from trustdesk.actions.runtime import Runtime
from trustdesk.api.deps import SESSION_COOKIE
from trustdesk.api.limits import limits
from trustdesk.realtime.hub import Subscription
from trustdesk.store import stream
from trustdesk.store.models import Operator, Ticket, Visitor

log = logging.getLogger(__name__)

MAX_FRAME = 64 * 1024
REPLAY_LIMIT = 1000
# Seconds before a held-back message (store/stream.py) is read again, doubling up to the max.
HELD_RETRY = 0.005
HELD_RETRY_MAX = 0.5
OPERATORS_TOPIC = "operators"
VISITORS_PRESENCE_TOPIC = "presence:visitors"


def _position(ev: dict[str, Any]) -> stream.Position:
    """A message event's stream position (store/stream.py; `tx` is 0 on SQLite)."""
    tx = ev.get("tx")
    return (tx if isinstance(tx, int) else 0, ev["message"]["id"])


class Closed(Exception):
    """The client went away, or we closed the socket."""


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _rt(ws: WebSocket) -> Runtime:
    rt: Runtime = ws.app.state.runtime
    return rt


def _dumps(frame: dict[str, Any]) -> str:
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


async def _send(ws: WebSocket, frame: dict[str, Any]) -> None:
    await _send_text(ws, _dumps(frame))


async def _send_text(ws: WebSocket, text: str) -> None:
    if ws.application_state != WebSocketState.CONNECTED:
        raise Closed
    try:
        await ws.send_text(text)
    except (WebSocketDisconnect, RuntimeError) as exc:
        raise Closed from exc


def _sansio(ws: WebSocket) -> WebSocketsSansIOProtocol | None:
    """The socket's uvicorn sans-I/O websockets protocol (what `trustdesk run` serves with),
    for _write_now; None under any other server."""
    proto = getattr(ws._send, "__self__", None)  # starlette keeps the ASGI send it was given
    return proto if isinstance(proto, WebSocketsSansIOProtocol) else None


def _write_now(ws: WebSocket, proto: WebSocketsSansIOProtocol | None, text: str) -> bool:
    """Send a frame in the caller's step, as the protocol's own `send` does when the socket
    is writable. Returns False, having sent nothing, under any other server (`proto` None)
    and whenever that `send` would wait or fail (paused for back-pressure, closing): the
    caller then sends the ordinary way."""
    if (
        proto is None
        or ws.application_state != WebSocketState.CONNECTED
        or not proto.handshake_complete
        or proto.close_sent
        or proto.disconnected
        or not proto.writable.is_set()
        or proto.transport.is_closing()
    ):
        return False
    try:
        proto.conn.send_text(text.encode())
        proto.transport.write(b"".join(proto.conn.data_to_send()))
    except Exception:  # (the ordinary send then meets the same state, and ends the socket)
        return False
    return True


class _Frames:
    """Frame texts encoded once for all the sockets they go to: one hub event reaches every
    subscribed socket of the process in turn, each with the same dict (events are read-only:
    realtime/hub.py). The last one is kept, by identity."""

    def __init__(self, build: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self._build = build
        self._source: dict[str, Any] | None = None
        self._text = ""

    def text(self, source: dict[str, Any]) -> str:
        if source is not self._source:
            self._text = _dumps(self._build(source))
            self._source = source
        return self._text


_message_frames = _Frames(lambda m: {"type": "message", "message": m})  # from the message
_event_frames = _Frames(lambda ev: ev)  # events sent as they are (typing, read, ...)


async def _receive(ws: WebSocket) -> dict[str, Any] | None:
    """The next client frame as a dict, None for a frame we answered with an error."""
    try:
        msg = await ws.receive()
    except (WebSocketDisconnect, RuntimeError) as exc:
        raise Closed from exc
    if msg["type"] == "websocket.disconnect":
        raise Closed
    raw = msg.get("text")
    if raw is None:
        raw_bytes = msg.get("bytes") or b""
        if len(raw_bytes) > MAX_FRAME:
            await _error(ws, "frame_too_large", "frames are limited to 64 KiB")
            return None
        try:
            raw = raw_bytes.decode("utf-8")
        except UnicodeDecodeError:
            await _error(ws, "bad_frame", "frames must be UTF-8 JSON")
            return None
    if len(raw) > MAX_FRAME:
        await _error(ws, "frame_too_large", "frames are limited to 64 KiB")
        return None
    try:
        frame = json.loads(raw)
    except ValueError:
        await _error(ws, "bad_frame", "frames must be JSON objects")
        return None
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        await _error(ws, "bad_frame", "frames must be JSON objects with a type")
        return None
    try:
        # JSON can spell a lone surrogate (\ud800) that no UTF-8 store can hold. The text
        # itself arrived as UTF-8, so only an escaped one can be there: check only then.
        if _SURROGATE_ESCAPE.search(raw):
            json.dumps(frame, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        await _error(ws, "bad_frame", "frames must be valid Unicode")
        return None
    return frame


async def _error(ws: WebSocket, code: str, message: str, **extra: Any) -> None:
    await _send(ws, {"type": "error", "code": code, "message": message, **extra})


def _int(v: Any, default: int = 0) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0 or v > 2**62:
        return default
    return int(v)


def _str(v: Any, limit: int) -> str | None:
    v = v.replace("\x00", "") if isinstance(v, str) else v  # PostgreSQL cannot store NUL
    return v[:limit] if isinstance(v, str) and v else None


async def _hello(ws: WebSocket, rt: Runtime) -> dict[str, Any]:
    try:
        frame = await asyncio.wait_for(_receive(ws), rt.settings.hello_timeout_seconds)
    except TimeoutError:
        await ws.close(4408, "hello timeout")
        raise Closed from None
    if frame is None or frame.get("type") != "hello":
        with contextlib.suppress(Closed):
            await _error(ws, "hello_required", "the first frame must be hello")
        await ws.close(4400, "hello required")
        raise Closed
    return frame


async def _operators_online(rt: Runtime) -> int:
    return len(await rt.presence.online("operator"))


# ====================================================================== bounds
# Per process (memory): with several processes behind a balancer each has its own counts.

TYPING_GAP = 0.3  # seconds between two typing frames of one socket (for one ticket)
TYPING_REFRESH = 1.0  # an unchanged "on" is relayed at most this often
PRESENCE_GAP = 1.0  # seconds between two presence frames of one visitor


class _OpenCount:
    """Open sockets per key (address, visitor, operator) in this process."""

    def __init__(self) -> None:
        self.n: dict[str, int] = {}

    def enter(self, key: str, cap: int) -> bool:
        if self.n.get(key, 0) >= cap:
            return False
        self.n[key] = self.n.get(key, 0) + 1
        return True

    def leave(self, key: str) -> None:
        left = self.n.get(key, 0) - 1
        if left > 0:
            self.n[key] = left
        else:
            self.n.pop(key, None)


_by_address, _by_visitor, _by_operator = _OpenCount(), _OpenCount(), _OpenCount()


async def _too_many(ws: WebSocket, message: str) -> None:
    """Close an accepted socket that is over a bound (4429; the client backs off)."""
    with contextlib.suppress(Closed):
        await _error(ws, "too_many_sockets", message)
    with contextlib.suppress(Exception):
        await ws.close(4429, "too many sockets")


def _ip(ws: WebSocket) -> str:
    return ws.client.host if ws.client else "unknown"


class _Trim:
    """Give freed memory back to the system after many sockets closed (glibc keeps freed
    heap pages of a process otherwise: RSS stayed at its peak after 3,000 sockets left)."""

    def __init__(self) -> None:
        self.open = 0
        self.peak = 0
        self.pending: asyncio.TimerHandle | None = None
        try:
            self.libc: Any = ctypes.CDLL("libc.so.6")
            self.libc.malloc_trim  # noqa: B018 - glibc only
        except (OSError, AttributeError):
            self.libc = None

    def opened(self) -> None:
        self.open += 1
        self.peak = max(self.peak, self.open)

    def closed(self) -> None:
        self.open -= 1
        if self.libc is not None and self.pending is None and self.peak - self.open >= 500:
            self.pending = asyncio.get_running_loop().call_later(2.0, self._trim)

    def _trim(self) -> None:
        self.pending = None
        self.peak = self.open
        gc.collect()  # the closed sockets' cycles (an idle server allocates too little to
        self.libc.malloc_trim(0)  # start a collection), then their pages


_trim = _Trim()


class _Reads:
    """The read cursors a socket asked to move, per ticket, written at most
    `ws_read_writes_per_second` times a second per socket and within its address's budget;
    the latest value always is (by a timer, and when the socket closes). Before, every
    `read` frame was a write transaction: 10 sockets x 1,000 frames made another visitor's
    send take 8 s instead of 7 ms."""

    def __init__(self, rt: Runtime, ip: str, write: Callable[[str, int], Awaitable[None]]) -> None:
        self.rt, self.ip, self.write = rt, ip, write
        self.pending: dict[str, int] = {}
        self.next_at = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.task: asyncio.Task[None] | None = None
        self.closed = False

    def put(self, key: str, value: int) -> None:
        self.pending[key] = value
        if self.timer is None and self.task is None and not self.closed:
            self._schedule(0.0)

    def _schedule(self, wait: float) -> None:
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(max(wait, self.next_at - loop.time()), self._start)

    def _start(self) -> None:
        self.timer = None
        self.task = asyncio.get_running_loop().create_task(self._flush())
        self.task.add_done_callback(_log_failure)

    async def _flush(self) -> None:
        wait = 0.0
        try:
            budget = limits(self.rt).ip_read
            while self.pending and not self.closed:
                try:
                    budget.check(self.ip)
                except ActionError as exc:
                    wait = float(getattr(exc, "retry_after", 1))
                    break
                key = next(iter(self.pending))
                await self.write(key, self.pending.pop(key))
            self.next_at = asyncio.get_running_loop().time() + (
                1.0 / self.rt.settings.ws_read_writes_per_second
            )
        finally:
            self.task = None
            if self.pending and not self.closed:
                self._schedule(wait)

    async def close(self) -> None:
        """The socket ended: write what is still pending, now (the last value is kept)."""
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.task is not None:
            await asyncio.wait({self.task})  # (its failure is logged by _log_failure)
        while self.pending:
            key = next(iter(self.pending))
            with contextlib.suppress(Exception):
                await self.write(key, self.pending.pop(key))


class _Typing:
    """One socket's typing state for one ticket, relayed at most every TYPING_GAP seconds
    and an unchanged "on" at most every TYPING_REFRESH; the latest state always goes out
    (by a timer). Before, every frame was relayed: 3,000 frames reached the operators 1:1
    at 624/s."""

    def __init__(self, publish: Callable[[bool], Awaitable[None]]) -> None:
        self.publish = publish
        self.sent = False
        self.sent_at = -1e9
        self.want = False
        self.timer: asyncio.TimerHandle | None = None

    async def set(self, active: bool) -> None:
        self.want = active
        if self.timer is not None:
            return  # the timer sends the latest state
        loop = asyncio.get_running_loop()
        now = loop.time()
        if active == self.sent and (not active or now - self.sent_at < TYPING_REFRESH):
            return
        wait = self.sent_at + TYPING_GAP - now
        if wait > 0:
            self.timer = loop.call_later(wait, self._later)
            return
        await self._send()

    def _later(self) -> None:
        self.timer = None
        if self.want != self.sent:
            asyncio.ensure_future(self._send()).add_done_callback(_log_failure)

    async def _send(self) -> None:
        self.sent, self.sent_at = self.want, asyncio.get_running_loop().time()
        await self.publish(self.sent)

    async def stop(self) -> None:
        """Typing ends now (a message was sent, the socket closed): "off" at once if "on"
        was relayed."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.want = False
        if self.sent:
            await self._send()


class _Presence:
    """Visitors' presence frames to the dashboards, at most one per PRESENCE_GAP seconds per
    visitor; what changes in between goes out as one frame of the latest state (a timer).
    Before, every connect and close of a socket was relayed, each with its 2 KiB page URL."""

    def __init__(self) -> None:
        self.last: dict[str, float] = {}
        self.pending: dict[str, dict[str, Any]] = {}

    async def publish(self, rt: Runtime, visitor_id: str, frame: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if visitor_id in self.pending:
            self.pending[visitor_id] = frame
            return
        wait = self.last.get(visitor_id, -1e9) + PRESENCE_GAP - now
        if wait > 0:
            self.pending[visitor_id] = frame
            loop.call_later(wait, self._later, rt, visitor_id)
            return
        self.last[visitor_id] = now
        if len(self.last) > 10_000:
            self.last = {k: t for k, t in self.last.items() if t > now - PRESENCE_GAP}
        await rt.hub.publish(OPERATORS_TOPIC, frame)

    def _later(self, rt: Runtime, visitor_id: str) -> None:
        frame = self.pending.pop(visitor_id)
        self.last[visitor_id] = asyncio.get_running_loop().time()
        asyncio.ensure_future(rt.hub.publish(OPERATORS_TOPIC, frame)).add_done_callback(
            _log_failure
        )


_presence = _Presence()


# ====================================================================== visitor


class VisitorConn:
    def __init__(self, ws: WebSocket, rt: Runtime, visitor: Visitor, sub: Subscription) -> None:
        self.ws, self.rt, self.visitor, self.sub = ws, rt, visitor, sub
        self.ticket: Ticket | None = None
        self.last_sent = 0
        self.conn_id = secrets.token_hex(8)
        self.typing_off: asyncio.TimerHandle | None = None
        self.typing_active = False
        self.page_url: str | None = None
        self.beat: asyncio.TimerHandle | None = None
        self.beat_task: asyncio.Task[Any] | None = None
        self.reads = _Reads(rt, _ip(ws), self._write_read)
        self.typing = _Typing(self._publish_typing)
        self.proto = _sansio(ws)
        if self.proto is not None:
            sub.consumer = self

    async def follow(self, ticket: Ticket, since: int) -> None:
        """Subscribe to a ticket, then replay what is stored after `since`."""
        if self.ticket is not None and self.ticket.id != ticket.id:
            await self.sub.remove(f"ticket:{self.ticket.id}")
            self.last_sent = 0
        self.ticket = ticket
        self.last_sent = max(self.last_sent, since) if self.last_sent else since
        await self.sub.add(f"ticket:{ticket.id}")
        await self.replay()

    async def replay(self) -> None:
        assert self.ticket is not None
        _, msgs = await tickets.visitor_messages(
            self.rt, self.visitor, self.ticket.number, self.last_sent
        )
        for m in msgs:
            await self.send_message(m)

    async def send_message(self, m: dict[str, Any]) -> None:
        if m["id"] <= self.last_sent:
            return
        self.last_sent = m["id"]
        await _send_text(self.ws, _message_frames.text(m))

    async def deliver(self, m: dict[str, Any], prev_id: int) -> None:
        """Send a new message of this ticket, after any the client has not had yet.

        `prev_id` is the ticket's message before it. Sent already (the usual case): send
        this one as it is. Not sent: a message whose event is late (another process) or a
        private note lies in between: fill the gap from the database, in order.
        """
        if m["id"] <= self.last_sent:
            return
        if prev_id > self.last_sent:
            await self.replay()
        await self.send_message(m)

    def take_now(self, ev: dict[str, Any]) -> bool:
        """The pump's work for an event it can do without waiting, done in the publisher's
        step (Subscription.consumer) and first by the pump itself: drop a message that is
        not for this widget or already sent, write one that follows what the socket has
        sent, or a frame sent as it is. False: the rest of the pump's way (a gap to fill
        from the database; a socket that cannot take a frame at once)."""
        kind = ev.get("type")
        if kind == "message":
            m = ev["message"]
            if not (self.ticket and m["ticket_id"] == self.ticket.number and m["kind"] != "note"):
                return True  # not for this widget (the pump would drop it too)
            if m["id"] <= self.last_sent:
                return True
            prev = ev.get("prev_id")
            if (prev if isinstance(prev, int) else m["id"]) > self.last_sent:
                return False
            if not _write_now(self.ws, self.proto, _message_frames.text(m)):
                return False
            self.last_sent = m["id"]
            metrics.message_delivered("visitor", m)
            return True
        if kind in ("typing", "read", "ticket", "presence"):
            return _write_now(self.ws, self.proto, _event_frames.text(ev))
        return False

    async def pump(self) -> None:
        """Hub events -> the client."""
        while True:
            ev = await self.sub.get()
            if self.take_now(ev):
                continue
            # Left: a new message of the widget's ticket after a gap (or one that could not
            # be written at once), a resync, a frame to send the ordinary way.
            kind = ev.get("type")
            if kind == "message":
                m = ev["message"]
                prev = ev.get("prev_id")
                await self.deliver(m, prev if isinstance(prev, int) else m["id"])
                metrics.message_delivered("visitor", m)
            elif kind == "resync":
                if self.ticket:
                    await self.replay()
            elif kind in ("typing", "read", "ticket", "presence"):
                await _send_text(self.ws, _event_frames.text(ev))

    def start_heartbeat(self) -> None:
        """Keep the visitor's presence alive while the socket is open: a timer, not a task
        per socket (5,000 idle widgets would be 5,000 sleeping tasks)."""
        loop = asyncio.get_running_loop()
        ttl = self.rt.settings.presence_ttl_seconds

        def beat() -> None:
            task = loop.create_task(
                self.rt.presence.touch("visitor", self.visitor.id, self.conn_id, ttl, self._info())
            )
            task.add_done_callback(_log_failure)
            self.beat_task = task
            self.beat = loop.call_later(ttl / 3, beat)

        self.beat = loop.call_later(ttl / 3, beat)

    def stop_heartbeat(self) -> None:
        if self.beat is not None:
            self.beat.cancel()
            self.beat = None
        if self.beat_task is not None:
            self.beat_task.cancel()
            self.beat_task = None

    def _info(self) -> dict[str, Any]:
        return {
            "page_url": self.page_url,
            "ticketId": self.ticket.number if self.ticket else None,
        }

    async def set_typing(self, active: bool) -> None:
        if self.ticket is None:
            return
        if self.typing_off is not None:
            self.typing_off.cancel()
            self.typing_off = None
        if active:
            loop = asyncio.get_running_loop()
            self.typing_off = loop.call_later(
                self.rt.settings.typing_ttl_seconds,
                lambda: asyncio.ensure_future(self.set_typing(False)),
            )
        self.typing_active = active
        await self.typing.set(active)

    async def stop_typing(self) -> None:
        if self.typing_off is not None:
            self.typing_off.cancel()
            self.typing_off = None
        self.typing_active = False
        await self.typing.stop()

    async def _publish_typing(self, active: bool) -> None:
        if self.ticket is None:
            return
        await self.rt.hub.publish(
            OPERATORS_TOPIC,
            {
                "type": "typing",
                "ticketId": self.ticket.number,
                "sender_type": "customer",
                "name": self.visitor.name or "Гость",
                "active": active,
                "ttl": self.rt.settings.typing_ttl_seconds,
            },
        )

    async def handle(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind == "ping":
            await _send(self.ws, {"type": "pong"})
        elif kind == "send":
            await self.on_send(frame)
        elif kind == "typing":
            await self.set_typing(bool(frame.get("active")))
        elif kind == "read":
            if self.ticket is not None:
                self.reads.put(self.ticket.number, _int(frame.get("last_read_id")))
        else:
            await _error(self.ws, "unknown_type", f"unknown frame type {kind[:32]!r}")

    async def _write_read(self, number: str, last_id: int) -> None:
        try:
            await tickets.mark_read_by_visitor(self.rt, self.visitor, number, last_id)
        except ActionError as exc:
            with contextlib.suppress(Closed):
                await _error(self.ws, exc.code, exc.message)

    async def on_send(self, frame: dict[str, Any]) -> None:
        cid = frame.get("client_msg_id")
        try:
            text = frame.get("message")
            if not isinstance(text, str):
                await _error(
                    self.ws,
                    "invalid_message",
                    "message must be a string",
                    client_msg_id=cid if isinstance(cid, str) else None,
                )
                return
            lim = limits(self.rt)
            lim.visitor_send.check(self.visitor.id, "too many messages, slow down")
            # Per address too, as over HTTP: many fresh tokens from one place are one flood.
            ip = self.ws.client.host if self.ws.client else "unknown"
            lim.ip_send.check(ip, "too many messages from this address")
            ticket, msg, _, prev_id = await tickets.send_customer_message(
                self.rt,
                self.visitor,
                text,
                self.ticket.number if self.ticket else None,
                cid if isinstance(cid, str) else None,
                new_ticket=frame.get("new_ticket") is True,
                address=ip,
                hints=routing.clean_hints(
                    frame.get("page_url") or self.page_url, frame.get("team")
                ),
            )
        except ActionError as exc:
            extra: dict[str, Any] = {"client_msg_id": cid if isinstance(cid, str) else None}
            if hasattr(exc, "retry_after"):
                extra["retry_after"] = exc.retry_after
            await _error(self.ws, exc.code, exc.message, **extra)
            return
        # The operators first: their dashboards' pumps were woken by the commit; let them
        # send before this socket gets its own copy and ack.
        await asyncio.sleep(0)
        if self.ticket is None or self.ticket.id != ticket.id:
            await self.follow(ticket, 0)
            await _send(
                self.ws,
                {
                    "type": "ticket",
                    "ticket": {
                        "ticketId": ticket.number,
                        "status": ticket.status,
                        "assignee": None,
                    },
                },
            )
        else:
            self.ticket = ticket
            await self.deliver(msg, prev_id)  # its frame before the ack, as if from the hub
        await _send(
            self.ws,
            {"type": "ack", "client_msg_id": cid, "ticketId": ticket.number, "message": msg},
        )
        if self.typing_active:
            await self.stop_typing()


async def visitor_socket(ws: WebSocket) -> None:
    rt = _rt(ws)
    await ws.accept()
    metrics.ws_opened("visitor")
    _trim.opened()
    conn: VisitorConn | None = None
    ip, counted = _ip(ws), []
    try:
        if not _visitor_may_open(rt, ip):
            await _too_many(ws, "too many sockets from this address")
            return
        counted.append((_by_address, ip))
        hello = await _hello(ws, rt)
        token = hello.get("token")
        visitor = await visitors.visitor_by_token(rt, token) if isinstance(token, str) else None
        if visitor is None:
            await _error(ws, "bad_token", "unknown visitor token")
            await ws.close(4401, "bad token")
            return
        if not _by_visitor.enter(visitor.id, rt.settings.ws_per_visitor):
            await _too_many(ws, "too many sockets for this visitor")
            return
        counted.append((_by_visitor, visitor.id))
        number = hello.get("ticketId")
        ticket = None
        if number is not None:
            try:
                ticket = await tickets.visitor_ticket(rt, visitor, str(number)[:41])
            except ActionError:
                await _error(ws, "ticket_not_found", "no such ticket")
                await ws.close(4404, "no such ticket")
                return
        async with rt.hub.subscribe([VISITORS_PRESENCE_TOPIC]) as sub:
            conn = VisitorConn(ws, rt, visitor, sub)
            conn.page_url = _str(hello.get("page_url"), 2048)
            ready: dict[str, Any] = {
                "type": "ready",
                "ticketId": ticket.number if ticket else None,
                "status": ticket.status if ticket else None,
                "operators_online": await _operators_online(rt),
                "admin_last_read_id": 0,
            }
            if ticket is not None:
                async with rt.store.read() as session:
                    ready["admin_last_read_id"] = await tickets.admin_read_id(session, ticket.id)
            await _send(ws, ready)
            if ticket is not None:
                await conn.follow(ticket, _int(hello.get("since")))
            await _visitor_online(rt, conn, ws)
            conn.start_heartbeat()
            await _serve(conn.pump(), _reader(ws, conn.handle))
    except Closed:
        pass
    finally:
        metrics.ws_closed("visitor")
        for count, key in counted:
            count.leave(key)
        if conn is not None:
            conn.stop_heartbeat()
            await conn.reads.close()
            await _visitor_gone(rt, conn)
        _trim.closed()


def _visitor_may_open(rt: Runtime, ip: str) -> bool:
    """Within the address's rate of new sockets and its number of open ones (counted
    then). Before, 3,000 sockets from one address and one token were all accepted."""
    try:
        limits(rt).ws_open.check(ip)
    except ActionError:
        return False
    return _by_address.enter(ip, rt.settings.ws_per_ip)


async def _visitor_online(rt: Runtime, conn: VisitorConn, ws: WebSocket) -> None:
    ua = ws.headers.get("user-agent")
    await visitors.touch_visitor(rt, conn.visitor.id, ua, conn.page_url)
    await rt.presence.touch(
        "visitor", conn.visitor.id, conn.conn_id, rt.settings.presence_ttl_seconds, conn._info()
    )
    await _presence.publish(
        rt,
        conn.visitor.id,
        {
            "type": "presence",
            "kind": "visitor",
            "visitor_ref": conn.visitor.id,
            "ticketId": conn.ticket.number if conn.ticket else None,
            "online": True,
            "page_url": conn.page_url,
            "user_agent": ua,
        },
    )


async def _visitor_gone(rt: Runtime, conn: VisitorConn) -> None:
    with contextlib.suppress(Exception):
        await conn.stop_typing()
        if await rt.presence.leave("visitor", conn.visitor.id, conn.conn_id):
            await _presence.publish(
                rt,
                conn.visitor.id,
                {
                    "type": "presence",
                    "kind": "visitor",
                    "visitor_ref": conn.visitor.id,
                    "ticketId": conn.ticket.number if conn.ticket else None,
                    "online": False,
                    "page_url": conn.page_url,
                    "user_agent": None,
                },
            )


async def _reader(ws: WebSocket, handle: Any) -> None:
    while True:
        frame = await _receive(ws)
        if frame is not None:
            await handle(frame)


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("socket background step failed", exc_info=task.exception())


async def _serve(*coros: Any) -> None:
    """Run the socket's loops until one ends (the client left); cancel the rest."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            exc = t.exception()
            if exc is not None and not isinstance(exc, Closed):
                log.error("socket loop failed", exc_info=exc)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# ====================================================================== operator


class OperatorConn:
    def __init__(
        self, ws: WebSocket, rt: Runtime, op: Operator, session_hash: str, sub: Subscription
    ) -> None:
        self.ws, self.rt, self.op, self.session_hash, self.sub = ws, rt, op, session_hash, sub
        # The stream position of the last message sent (store/stream.py): (tx, id).
        self.pos: stream.Position = (0, 0)
        # PostgreSQL: the next message in commit order is known only from the database
        # (writers no longer share a lock), so every new message is read (replay).
        self.pg = rt.store.dialect == "postgresql"
        # The furthest message event not sent yet: held back below the horizon (an older
        # transaction still running). Read again, with backoff, until it has gone out.
        self.held: stream.Position | None = None
        self.retry_in = HELD_RETRY
        self.conn_id = secrets.token_hex(8)
        self.refs: dict[str, str] = {}  # ticket number -> internal id
        self.visible = True
        self.changed: dict[str, None] = {}  # tickets whose summary is to be sent, in order
        self.changed_event = asyncio.Event()
        self.reads = _Reads(rt, _ip(ws), self._write_read)
        self.typing: dict[str, _Typing] = {}  # per ticket number
        self.proto = _sansio(ws)
        if self.proto is not None:
            sub.consumer = self

    def info(self) -> dict[str, Any]:
        return {"name": self.op.display_name, "visible": self.visible}

    async def replay(self) -> None:
        # (read before the messages: a held-back message below it that the read does not
        # return is gone, erased meanwhile, and no longer waited for)
        horizon = None if self.held is None else await tickets.stream_horizon(self.rt)
        msgs = await tickets.operator_messages_after(self.rt, self.pos, REPLAY_LIMIT)
        for pos, m in msgs:
            await self.send_message(m, pos)
        if len(msgs) >= REPLAY_LIMIT:
            await _send(self.ws, {"type": "resync"})
        elif self.held is not None and (
            self.held <= self.pos or (horizon is not None and self.held[0] < horizon)
        ):
            self.held = None
            self.retry_in = HELD_RETRY

    async def send_message(self, m: dict[str, Any], pos: stream.Position) -> None:
        if pos <= self.pos:
            return
        self.pos = pos
        await _send_text(self.ws, _message_frames.text(m))

    def next_in_order(self, ev: dict[str, Any]) -> bool:
        """The event's message is the stream's next: SQLite only (one writer, ids in commit
        order), when its id follows the last sent."""
        return not self.pg and self.held is None and ev["message"]["id"] == self.pos[1] + 1

    def take_now(self, ev: dict[str, Any]) -> bool:
        """The pump's work for an event it can do without waiting (see VisitorConn.take_now):
        the next message, a ticket to summarise, typing (not their own) and read frames."""
        kind = ev.get("type")
        if kind == "message":
            m = ev["message"]
            pos = _position(ev)
            if pos <= self.pos:
                return True
            if not self.next_in_order(ev):
                return False  # maybe a gap: the pump reads what is missing first
            if not _write_now(self.ws, self.proto, _message_frames.text(m)):
                return False
            ref = ev.get("ticket_ref")
            if isinstance(ref, str):
                self.refs[m["ticket_id"]] = ref
            self.pos = pos
            metrics.message_delivered("operator", m)
            return True
        if kind == "ticket_changed":
            only = ev.get("only")
            if only is None or only == self.op.id:
                self.changed[ev["ticket_ref"]] = None
                self.changed_event.set()
            return True
        if kind == "typing" and ev.get("operator_id") == self.op.id:
            return True  # (their own)
        if kind in ("typing", "read"):
            return _write_now(self.ws, self.proto, _event_frames.text(ev))
        return False

    async def next_event(self) -> dict[str, Any] | None:
        """The next event; None when a held-back message is due to be read again (the
        transaction that holds it back may not be a message's, and then nothing else
        would wake this socket)."""
        if self.held is None:
            return await self.sub.get()
        try:
            return await asyncio.wait_for(self.sub.get(), self.retry_in)
        except TimeoutError:
            self.retry_in = min(self.retry_in * 2, HELD_RETRY_MAX)
            return None

    async def pump(self) -> None:
        while True:
            ev = await self.next_event()
            if ev is None:
                await self.replay()
                continue
            if self.take_now(ev):
                continue
            # Left: a message after a gap (or on PostgreSQL any new one, or one that could
            # not be written at once), the events that need to wait, frames to send the
            # ordinary way.
            kind = ev.get("type")
            if kind == "message":
                m = ev["message"]
                ref = ev.get("ticket_ref")
                if isinstance(ref, str):
                    self.refs[m["ticket_id"]] = ref
                pos = _position(ev)
                if pos <= self.pos:
                    continue
                if self.next_in_order(ev):
                    await self.send_message(m, pos)
                else:
                    await self.replay()
                if pos <= self.pos:
                    metrics.message_delivered("operator", m)
                else:  # committed, but an older transaction is still running
                    self.held = pos if self.held is None else max(self.held, pos)
            elif kind == "session_revoked":
                if ev.get("operator_id") == self.op.id and ev.get("session_hash") in (
                    None,
                    self.session_hash,
                ):
                    await self.ws.close(4401, "session ended")
                    raise Closed
            elif kind in ("typing", "read"):
                await _send_text(self.ws, _event_frames.text(ev))
            elif kind == "presence":
                await _send(self.ws, {k: v for k, v in ev.items() if k != "visitor_ref"})
            elif kind == "resync":
                await self.replay()
                await _send(self.ws, {"type": "resync"})
            elif kind == "settings_changed":
                await _send(self.ws, ev)  # (the dashboard's widget page shows what is stored)
            elif kind == "origin_blocked" and self.op.role == "admin":
                await _send(self.ws, ev)  # (the admins' "site not connected" notice)

    async def summaries(self) -> None:
        """The changed tickets' summaries, off the pump: the pump marks a ticket and goes on
        with the next event while the summaries are read (in batches shared with the other
        dashboards: tickets.SummaryBatcher). A ticket changed again before its summary was
        read gets one summary, read after the last change."""
        batcher = tickets.summary_batcher(self.rt)
        while True:
            await self.changed_event.wait()
            self.changed_event.clear()
            refs = list(self.changed)
            self.changed.clear()
            found = await asyncio.gather(*(batcher.get(self.op.id, ref) for ref in refs))
            for summary in found:
                if summary is not None:
                    await _send(self.ws, {"type": "ticket", "ticket": summary})

    async def heartbeat(self) -> None:
        """Keep presence alive; end the socket as soon as the session is no longer valid."""
        ttl = self.rt.settings.presence_ttl_seconds
        beat = 0.0
        while True:
            await asyncio.sleep(2)
            if not await operators.session_valid(self.rt, self.session_hash):
                await self.ws.close(4401, "session ended")
                raise Closed
            beat += 2
            if beat >= ttl / 3:
                beat = 0
                await self.rt.presence.touch(
                    "operator", str(self.op.id), self.conn_id, ttl, self.info()
                )

    async def on_send(self, frame: dict[str, Any]) -> None:
        """A reply (or note) over the socket: the same action as POST /support/reply."""
        cid = frame.get("client_msg_id")
        cid = cid if isinstance(cid, str) else None
        number = _str(frame.get("ticketId"), 41) or ""
        text = frame.get("message")
        try:
            if not isinstance(text, str):
                raise Invalid("message must be a string", "invalid_message")
            if cid is None:
                raise Invalid("client_msg_id is required", "invalid_client_msg_id")
            kind = "note" if frame.get("note") is True else "text"
            msg = await tickets.reply(self.rt, self.op, number, text, cid, kind=kind)
        except ActionError as exc:
            await _error(self.ws, exc.code, exc.message, client_msg_id=cid)
            return
        # The customer first: their socket's pump was woken by the commit; let it (and the
        # other sockets woken with it) send before this socket hears its ack.
        await asyncio.sleep(0)
        ack = {"type": "ack", "client_msg_id": cid, "ticketId": msg["ticket_id"], "message": msg}
        await _send(self.ws, ack)

    async def ref(self, number: str) -> str | None:
        if number not in self.refs:
            async with self.rt.store.read() as session:
                t = await tickets.ticket_by_number(session, number)
            if t is None:
                return None
            self.refs[number] = t.id
        return self.refs[number]

    async def handle(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind == "ping":
            await _send(self.ws, {"type": "pong"})
        elif kind == "typing":
            number = _str(frame.get("ticketId"), 41)
            ref = await self.ref(number) if number else None
            if ref is None or number is None:
                await _error(self.ws, "ticket_not_found", "no such ticket")
                return
            if number not in self.typing:
                self.typing[number] = _Typing(functools.partial(self._publish_typing, number, ref))
            await self.typing[number].set(bool(frame.get("active")))
        elif kind == "send":
            await self.on_send(frame)
        elif kind == "visibility":
            # A hidden dashboard tab still gets browser push for new customer messages.
            self.visible = bool(frame.get("visible", True))
            await self.rt.presence.touch(
                "operator",
                str(self.op.id),
                self.conn_id,
                self.rt.settings.presence_ttl_seconds,
                self.info(),
            )
        elif kind == "read":
            number = _str(frame.get("ticketId"), 41)
            self.reads.put(number or "", _int(frame.get("last_read_id")))
        else:
            await _error(self.ws, "unknown_type", f"unknown frame type {kind[:32]!r}")

    async def _publish_typing(self, number: str, ref: str, active: bool) -> None:
        ev = {
            "type": "typing",
            "ticketId": number,
            "sender_type": "admin",
            "name": self.op.display_name,
            "active": active,
            "ttl": self.rt.settings.typing_ttl_seconds,
        }
        await self.rt.hub.publish(f"ticket:{ref}", ev)
        await self.rt.hub.publish(OPERATORS_TOPIC, {**ev, "operator_id": self.op.id})

    async def _write_read(self, number: str, last_id: int) -> None:
        try:
            await tickets.mark_read_by_operator(self.rt, self.op, number, last_id)
        except ActionError as exc:
            with contextlib.suppress(Closed):
                await _error(self.ws, exc.code, exc.message)


async def operator_socket(ws: WebSocket) -> None:
    rt = _rt(ws)
    origin = (ws.headers.get("origin") or "").rstrip("/")
    host_origin = _own_origin(ws)
    if origin not in rt.live.current.origins and origin != host_origin:
        await ws.close(4403, "origin not allowed")  # before accept: the handshake is refused
        return
    auth = await operators.authenticate(rt, ws.cookies.get(SESSION_COOKIE))
    if auth is None:
        await ws.close(4401, "login required")
        return
    try:
        await accounts.enforce_required_2fa(rt, auth.operator, None)
    except ActionError:
        await ws.close(4403, "two-factor login is required: set it up first")
        return
    await ws.accept()
    op = auth.operator
    if not _by_operator.enter(str(op.id), rt.settings.ws_per_operator):
        await _too_many(ws, "too many sockets for this operator")
        return
    metrics.ws_opened("operator")
    conn_id = secrets.token_hex(8)
    conn: OperatorConn | None = None
    try:
        hello = await _hello(ws, rt)
        async with rt.hub.subscribe([OPERATORS_TOPIC]) as sub:
            conn = OperatorConn(ws, rt, op, auth.session_hash, sub)
            conn.conn_id = conn_id
            became = await rt.presence.touch(
                "operator",
                str(op.id),
                conn_id,
                rt.settings.presence_ttl_seconds,
                conn.info(),
            )
            online = await rt.presence.online("operator")
            ops = await operators.list_operators(rt)
            await _send(
                ws,
                {
                    "type": "ready",
                    "operators": [
                        {"id": o.id, "name": o.display_name, "online": str(o.id) in online}
                        for o in ops
                        if o.active
                    ],
                },
            )
            if became:
                await _operator_presence(rt, op, True)
            conn.pos = await tickets.stream_position(rt, _int(hello.get("since")))
            await conn.replay()
            await _serve(conn.pump(), conn.summaries(), conn.heartbeat(), _reader(ws, conn.handle))
    except Closed:
        pass
    finally:
        metrics.ws_closed("operator")
        _by_operator.leave(str(op.id))
        if conn is not None:
            await conn.reads.close()
            for typing in conn.typing.values():
                with contextlib.suppress(Exception):
                    await typing.stop()
        with contextlib.suppress(Exception):
            if await rt.presence.leave("operator", str(op.id), conn_id):
                await _operator_presence(rt, op, False)


def _own_origin(ws: WebSocket) -> str:
    host = ws.headers.get("host", "")
    scheme = "https" if ws.url.scheme == "wss" else "http"
    return f"{scheme}://{host}"


async def _operator_presence(rt: Runtime, op: Operator, online: bool) -> None:
    await rt.hub.publish(
        OPERATORS_TOPIC,
        {
            "type": "presence",
            "kind": "operator",
            "operator": {"id": op.id, "name": op.display_name},
            "online": online,
        },
    )
    await rt.hub.publish(
        VISITORS_PRESENCE_TOPIC,
        {
            "type": "presence",
            "operators_online": await _operators_online(rt),
        },
    )


LOW_NOFILE = 4096


def raise_descriptor_limit() -> int:
    """At start: raise the soft limit on open descriptors to the hard one (every socket is
    one), and warn when it is still low. At 1,024 (a systemd unit without LimitNOFILE), about
    1,000 idle connections left every other request failing for 30 s. Returns the limit."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or hard > soft:
            want = 1_048_576 if hard == resource.RLIM_INFINITY else hard
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ValueError, OSError):  # pragma: no cover - not a POSIX system
        return 0
    if soft < LOW_NOFILE:
        log.warning(
            "open file limit is %d: each socket takes one, so about %d visitors can be "
            "connected at once; raise it (LimitNOFILE=65536 in the systemd unit, ulimit -n)",
            soft,
            soft - 100,
        )
    return soft


# The socket endpoints by path: TrustDeskApp calls them directly (app.py), outside
# FastAPI's routing and middleware.
SOCKETS = {"/ws/visitor": visitor_socket, "/ws/operator": operator_socket}
