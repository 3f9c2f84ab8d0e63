"""Clients that behave like the real widget and dashboard across failures.

They keep the highest message id they have, reconnect (with backoff) when the socket or the
server goes away and resume with `since`, and record every message frame they get. They are
strict where a real client would only be careful: a message id seen before (a duplicate),
or out of order, is a test failure, not something to dedupe. The widget's stream is in id
order; the dashboard's is in commit order (docs/protocol.md, "Commit order without a
lock"), which is id order within each ticket, and it resumes after the last message sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from tests.support.wsclient import Socket, operator_socket, visitor_socket

RECONNECT_ERRORS = (
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    OSError,
    TimeoutError,
)


class ResumingClient:
    """A socket client that resumes from the last id it got and never accepts a repeat.

    `commit_order`: the stream is in commit order (the operators'), so ids only rise within
    a ticket; otherwise (a ticket's stream) they rise on every message.
    """

    def __init__(
        self,
        connect: Callable[[int], Awaitable[tuple[Socket, dict[str, Any]]]],
        commit_order: bool = False,
    ) -> None:
        self._connect = connect
        self.commit_order = commit_order
        self.sock: Socket | None = None
        self.log: list[dict[str, Any]] = []
        self.seen: set[int] = set()
        self.per_ticket: dict[str, int] = {}
        self.last = 0  # the last message received: where the socket resumes
        self.connections = 0
        self.acks: dict[str, int] = {}  # client_msg_id -> stored message id
        self.waiters: dict[str, asyncio.Future[int]] = {}  # acks someone awaits
        # Called after every (re)connect, e.g. to re-send what is not acknowledged yet.
        self.on_connect: Callable[[], Awaitable[None]] | None = None

    @property
    def ids(self) -> list[int]:
        return [m["id"] for m in self.log]

    def _take(self, frame: dict[str, Any]) -> None:
        if frame.get("type") == "ack":
            cid = frame["client_msg_id"]
            self.acks[cid] = frame["message"]["id"]
            waiter = self.waiters.pop(cid, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(self.acks[cid])
            return
        if frame.get("type") != "message":
            return
        m = frame["message"]
        assert m["id"] not in self.seen, f"message {m['id']} twice"
        before = self.per_ticket.get(m["ticket_id"], 0) if self.commit_order else self.last
        assert m["id"] > before, f"message {m['id']} after {before}: out of order"
        self.per_ticket[m["ticket_id"]] = m["id"]
        self.seen.add(m["id"])
        self.last = m["id"]
        self.log.append(m)

    async def connect(self, timeout: float = 60) -> None:
        """(Re)connect with backoff until the server accepts, resuming after `last`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        delay = 0.05
        while True:
            try:
                self.sock, _ = await self._connect(self.last)
                self.connections += 1
                if self.on_connect is not None:
                    await self.on_connect()
                return
            except RECONNECT_ERRORS:
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(delay)  # backoff between attempts, as the widget does
                delay = min(delay * 2, 1.0)

    async def drop(self, abort: bool = False) -> None:
        """Go away: a clean close, or the TCP connection just dies."""
        if self.sock is None:
            return
        if abort:
            self.sock.conn.transport.abort()  # type: ignore[attr-defined]
        else:
            try:
                await asyncio.wait_for(self.sock.close(), 5)
            except (*RECONNECT_ERRORS,):
                pass
        self.sock = None

    async def pump_until(
        self, done: Callable[[], bool], timeout: float = 30, reconnect: bool = True
    ) -> None:
        """Receive (reconnecting as needed) until `done()` holds.

        With reconnect=False it returns as soon as the socket is gone instead.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not done():
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError(f"client stuck at id {self.last}; has {self.ids[-5:]}")
            if self.sock is None:
                if not reconnect:
                    return
                await self.connect(timeout=left)
                continue
            try:
                frame = await self.sock.recv(min(left, 2.0))
            except TimeoutError:
                continue
            except ConnectionClosed:
                self.sock = None
                continue
            self._take(frame)

    async def sync_to(self, last_id: int, timeout: float = 30) -> None:
        """Receive until message `last_id` (the last one stored, in the stream's order)."""

        def done() -> bool:
            return last_id in self.seen or (not self.commit_order and self.last >= last_id)

        await self.pump_until(done, timeout)

    async def close(self) -> None:
        await self.drop()


def visitor_client(ws_url: Callable[[], str] | str, token: str, ticket: str) -> ResumingClient:
    def url() -> str:
        return ws_url() if callable(ws_url) else ws_url

    return ResumingClient(lambda since: visitor_socket(url(), token, ticket, since))


def operator_client(
    ws_url: Callable[[], str] | str, cookie: Callable[[], str] | str, origin: str
) -> ResumingClient:
    def url() -> str:
        return ws_url() if callable(ws_url) else ws_url

    def sid() -> str:
        return cookie() if callable(cookie) else cookie

    return ResumingClient(
        lambda since: operator_socket(url(), sid(), origin, since), commit_order=True
    )
