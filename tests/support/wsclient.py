"""Real WebSocket clients for the visitor and operator sockets."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import websockets
from pydantic import TypeAdapter
from websockets.asyncio.client import ClientConnection

from trustdesk.realtime.events import operator_frames, visitor_frames


class Socket:
    """A client socket that checks every server frame against the protocol's models."""

    def __init__(self, conn: ClientConnection, adapter: TypeAdapter[Any]) -> None:
        self.conn = conn
        self.adapter = adapter
        self.frames: list[dict[str, Any]] = []

    async def send(self, frame: dict[str, Any]) -> None:
        await self.conn.send(json.dumps(frame))

    async def recv(self, timeout: float = 5) -> dict[str, Any]:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(self.conn.recv(), timeout))
        self.adapter.validate_python(frame)  # docs/protocol.md is rendered from these models
        self.frames.append(frame)
        return frame

    async def until(self, pred: Any, timeout: float = 5) -> dict[str, Any]:
        """Receive frames until one matches `pred` (a type string or a callable)."""
        check = (lambda f: f.get("type") == pred) if isinstance(pred, str) else pred
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError(f"no frame matching {pred!r}; saw {self.frames[-5:]}")
            frame = await self.recv(left)
            if check(frame):
                return frame

    async def messages(self, n: int, timeout: float = 5) -> list[dict[str, Any]]:
        out = []
        for _ in range(n):
            out.append((await self.until("message", timeout))["message"])
        return out

    async def quiet(self, seconds: float = 0.3) -> list[dict[str, Any]]:
        """Frames that arrive within a short window (used to assert nothing more comes)."""
        got = []
        try:
            while True:
                got.append(await self.recv(seconds))
        except TimeoutError:
            return got

    async def close(self) -> None:
        await self.conn.close()


async def visitor_socket(
    ws_url: str, token: str, ticket_id: str | None = None, since: int = 0
) -> tuple[Socket, dict[str, Any]]:
    conn = await websockets.connect(ws_url + "/ws/visitor", open_timeout=10)
    s = Socket(conn, visitor_frames)
    await s.send({"type": "hello", "token": token, "ticketId": ticket_id, "since": since})
    ready = await s.until("ready")
    return s, ready


async def operator_socket(
    ws_url: str, session_cookie: str, origin: str, since: int = 0
) -> tuple[Socket, dict[str, Any]]:
    conn = await websockets.connect(
        ws_url + "/ws/operator",
        origin=origin,  # type: ignore[arg-type]
        additional_headers={"Cookie": f"td_session={session_cookie}"},
        open_timeout=10,
    )
    s = Socket(conn, operator_frames)
    await s.send({"type": "hello", "since": since})
    ready = await s.until("ready")
    return s, ready
